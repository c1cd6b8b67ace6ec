#include "text/utf8.h"

namespace hearth {

uint32_t utf8_decode_lenient(std::string_view s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  auto cont = [&](size_t k) { return k < s.size() && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80; };
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[k]) & 0x3F); };
  if (c < 0x80) {
    ++i;
    return c;
  }
  if ((c & 0x40) && !(c & 0x20) && i + 1 < s.size() && cont(i + 1)) {
    const uint32_t r = ((c & 0x1Fu) << 6) | at(i + 1);
    i += 2;
    return r;
  }
  if ((c & 0x60) == 0x60 && !(c & 0x10) && i + 2 < s.size() && cont(i + 1) && cont(i + 2)) {
    const uint32_t r = ((c & 0x0Fu) << 12) | (at(i + 1) << 6) | at(i + 2);
    i += 3;
    return r;
  }
  if ((c & 0x70) == 0x70 && !(c & 0x08) && i + 3 < s.size() && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
    const uint32_t r = ((c & 0x07u) << 18) | (at(i + 1) << 12) | (at(i + 2) << 6) | at(i + 3);
    i += 4;
    return r;
  }
  ++i;
  return 0xFFFD;
}

void utf8_append(uint32_t cpt, std::string& out) {
  if (cpt <= 0x7F) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt <= 0x7FF) {
    out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0xFFFF) {
    out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

}  // namespace hearth
