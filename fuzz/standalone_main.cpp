// Driver for toolchains without libFuzzer (GCC): replays inputs through LLVMFuzzerTestOneInput,
// or runs a simple seeded random-mutation loop, so the target still runs under ASan/UBSan.
//
//   gguf_fuzz_standalone FILE...                     replay each file (e.g. a libFuzzer crash)
//   gguf_fuzz_standalone --mutate SECONDS SEED FILE  mutate FILE for SECONDS (SEED: integer)
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<uint8_t> read_all(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path);
    std::exit(2);
  }
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void mutate(std::vector<uint8_t>& b, std::mt19937_64& rng) {
  // Counts and lengths are the risky fields, so besides random bytes, plant boundary integers.
  static constexpr uint64_t kInteresting[] = {0, 1, 2, 4, 8, 9, 12, 31, 32, 33, 0xff, 0xffff, 0x7fffffff,
                                              0xffffffff, uint64_t{1} << 32, uint64_t{1} << 63, ~uint64_t{0}};
  const int n = 1 + static_cast<int>(rng() % 6);
  for (int i = 0; i < n && !b.empty(); ++i) {
    const size_t at = rng() % b.size();
    switch (rng() % 8) {
      case 0:
      case 1: b[at] = static_cast<uint8_t>(rng()); break;
      case 2:
      case 3: b[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
      case 4:
      case 5: {
        const uint64_t x = kInteresting[rng() % std::size(kInteresting)];
        std::memcpy(b.data() + at, &x, std::min<size_t>(size_t{1} << (rng() % 4), b.size() - at));
        break;
      }
      case 6: b.resize(at); break;
      default: {  // duplicate a chunk (repeats keys / tensor infos)
        const size_t len = std::min<size_t>(1 + rng() % 64, b.size() - at);
        std::vector<uint8_t> chunk(b.begin() + static_cast<long>(at), b.begin() + static_cast<long>(at + len));
        b.insert(b.begin() + static_cast<long>(rng() % b.size()), chunk.begin(), chunk.end());
        break;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--mutate") == 0) {
    const double seconds = std::atof(argv[2]);
    std::mt19937_64 rng(std::strtoull(argv[3], nullptr, 10));
    const std::vector<uint8_t> seed = read_all(argv[4]);
    const auto start = std::chrono::steady_clock::now();
    uint64_t runs = 0;
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
      std::vector<uint8_t> b = seed;
      mutate(b, rng);
      LLVMFuzzerTestOneInput(b.data(), b.size());
      ++runs;
    }
    std::printf("%llu runs, no crash\n", static_cast<unsigned long long>(runs));
    return 0;
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE... | --mutate SECONDS SEED FILE\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    const std::vector<uint8_t> b = read_all(argv[i]);
    LLVMFuzzerTestOneInput(b.data(), b.size());
  }
  std::printf("%d inputs, no crash\n", argc - 1);
  return 0;
}
