// Driver for toolchains without libFuzzer (GCC): replays inputs through LLVMFuzzerTestOneInput,
// or runs a seeded random-mutation loop over a seed corpus, so a target still runs under
// ASan/UBSan (scripts/fuzz.sh) and, briefly and unsanitized, in ctest.
//
//   X_fuzz_standalone PATH...                       replay each file (e.g. a crash), or every file of a folder
//   X_fuzz_standalone --mutate SECONDS SEED PATH... mutate the seeds for SECONDS (SEED: integer);
//                                                    a PATH may be a folder; missing paths are skipped
//
// Mutations are byte-level (flips, boundary integers, truncation, duplicated chunks) plus
// splices between seeds, which suit both binary formats and text grammars. Before a mutated
// input runs, it is written to ./fuzz-crash-<target>.bin (HEARTH_FUZZ_CRASH_DIR overrides the
// folder), so a crash leaves its reproducer behind; the file is removed when the run ends cleanly.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

Bytes read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(2);
  }
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Files named by `args` (folders expanded, sorted for a reproducible run).
std::vector<fs::path> collect(const std::vector<std::string>& args, bool skip_missing) {
  std::vector<fs::path> files;
  for (const auto& a : args) {
    std::error_code ec;
    if (fs::is_directory(a, ec)) {
      std::vector<fs::path> in_dir;
      for (const auto& e : fs::recursive_directory_iterator(a, ec))
        if (e.is_regular_file()) in_dir.push_back(e.path());
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (fs::exists(a, ec)) {
      files.emplace_back(a);
    } else if (!skip_missing) {
      std::fprintf(stderr, "no such file: %s\n", a.c_str());
      std::exit(2);
    }
  }
  return files;
}

void mutate(Bytes& b, const std::vector<Bytes>& seeds, std::mt19937_64& rng) {
  // Counts and lengths are the risky fields, so besides random bytes, plant boundary integers.
  static constexpr uint64_t kInteresting[] = {0,
                                              1,
                                              2,
                                              4,
                                              8,
                                              9,
                                              12,
                                              31,
                                              32,
                                              33,
                                              0xff,
                                              0xffff,
                                              0x7fffffff,
                                              0xffffffff,
                                              uint64_t{1} << 32,
                                              uint64_t{1} << 63,
                                              ~uint64_t{0}};
  const int n = 1 + static_cast<int>(rng() % 6);
  for (int i = 0; i < n; ++i) {
    if (b.empty()) b.push_back(static_cast<uint8_t>(rng()));
    const size_t at = rng() % b.size();
    switch (rng() % 10) {
      case 0:
      case 1:
        b[at] = static_cast<uint8_t>(rng());
        break;
      case 2:
      case 3:
        b[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 4:
      case 5: {
        const uint64_t x = kInteresting[rng() % std::size(kInteresting)];
        std::memcpy(b.data() + at, &x, std::min<size_t>(size_t{1} << (rng() % 4), b.size() - at));
        break;
      }
      case 6:
        b.resize(at);
        break;
      case 7: {  // splice in a chunk of another seed (tokens of the same grammar)
        const Bytes& other = seeds[rng() % seeds.size()];
        if (other.empty()) break;
        const size_t from = rng() % other.size();
        const size_t len = std::min<size_t>(1 + rng() % 64, other.size() - from);
        b.insert(b.begin() + static_cast<long>(at), other.begin() + static_cast<long>(from),
                 other.begin() + static_cast<long>(from + len));
        break;
      }
      case 8:
        b.erase(b.begin() + static_cast<long>(at),
                b.begin() + static_cast<long>(std::min(b.size(), at + 1 + rng() % 16)));
        break;
      default: {  // duplicate a chunk (repeats keys, tensor infos, nested tags)
        const size_t len = std::min<size_t>(1 + rng() % 64, b.size() - at);
        Bytes chunk(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + len));
        b.insert(b.begin() + static_cast<long>(rng() % b.size()), chunk.begin(), chunk.end());
        break;
      }
    }
  }
  if (b.size() > (size_t{1} << 20)) b.resize(size_t{1} << 20);
}

fs::path crash_file(const char* argv0) {
  const char* dir = std::getenv("HEARTH_FUZZ_CRASH_DIR");
  std::string name = fs::path(argv0).filename().string();
  if (auto p = name.find("_fuzz"); p != std::string::npos) name.erase(p);  // jinja_fuzz_standalone -> jinja
  return fs::path(dir && *dir ? dir : ".") / ("fuzz-crash-" + name + ".bin");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 5 && std::strcmp(argv[1], "--mutate") == 0) {
    const double seconds = std::atof(argv[2]);
    std::mt19937_64 rng(std::strtoull(argv[3], nullptr, 10));
    std::vector<Bytes> seeds;
    for (const auto& f : collect(std::vector<std::string>(argv + 4, argv + argc), true)) seeds.push_back(read_all(f));
    if (seeds.empty()) {
      std::fprintf(stderr, "no seed files found\n");
      return 2;
    }
    for (const auto& s : seeds) LLVMFuzzerTestOneInput(s.data(), s.size());  // the seeds themselves first
    const fs::path crash = crash_file(argv[0]);
    const auto start = std::chrono::steady_clock::now();
    uint64_t runs = 0;
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
      Bytes b = seeds[rng() % seeds.size()];
      mutate(b, seeds, rng);
      // Cheap next to these parsers; a crash then leaves its input behind.
      std::ofstream(crash, std::ios::binary)
          .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
      LLVMFuzzerTestOneInput(b.data(), b.size());
      ++runs;
    }
    std::error_code ec;
    fs::remove(crash, ec);
    std::printf("%llu runs over %zu seeds, no crash\n", static_cast<unsigned long long>(runs), seeds.size());
    return 0;
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH... | --mutate SECONDS SEED PATH...\n", argv[0]);
    return 2;
  }
  const auto files = collect(std::vector<std::string>(argv + 1, argv + argc), false);
  for (const auto& f : files) {
    const Bytes b = read_all(f);
    LLVMFuzzerTestOneInput(b.data(), b.size());
  }
  std::printf("%zu inputs, no crash\n", files.size());
  return 0;
}
