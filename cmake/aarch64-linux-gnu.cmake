# Cross build for AArch64 (the `neon` preset): Debian's g++-aarch64-linux-gnu, the target's
# libraries from Debian multiarch (libfmt-dev:arm64, libpcre2-dev:arm64, libgtest-dev:arm64; see
# scripts/install-deps.sh), tests run under qemu-user with every feature of the emulated CPU on
# (`-cpu max`: NEON, dotprod, i8mm, SVE). Nothing here is needed for a native build.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# Never let find_* pick a host (x86-64) library or config.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
set(CMAKE_IGNORE_PREFIX_PATH /usr/lib/x86_64-linux-gnu)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -cpu max)
