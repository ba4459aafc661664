/* Hardware CRC32C for the iSCSI digests (RFC 7143 §13.1).
 *
 * crc32 has a latency of three cycles and a throughput of one per cycle, so one dependent
 * chain runs at a third of the unit's speed. Large buffers are cut into three consecutive
 * blocks whose CRCs are computed in one interleaved loop (three independent chains), then
 * joined: the register after X||Y is shift_len(Y)(crc(X)) ^ crc0(Y), where crc0 starts from
 * a zero register and shift_n is the linear map "feed n zero bytes", precomputed once as four
 * 256-entry tables for each of the two block lengths used. */
#include "CCRC32C.h"

#include <pthread.h>
#include <string.h>

#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
static int hw_present;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Reflected Castagnoli polynomial. */
#define POLY 0x82F63B78u

static uint32_t feed_zeros(uint32_t crc, size_t n) {
  static uint32_t table[256];
  static int built;
  if (!built) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
      table[i] = c;
    }
    built = 1;
  }
  while (n--) crc = table[crc & 0xff] ^ (crc >> 8);
  return crc;
}

/* The tables of the linear map "feed n zero bytes": map(v) = t[0][v&ff] ^ ... ^ t[3][v>>24]. */
static void build_shift(uint32_t t[4][256], size_t n) {
  uint32_t basis[32];
  for (int bit = 0; bit < 32; bit++) basis[bit] = feed_zeros(1u << bit, n);
  for (int k = 0; k < 4; k++) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t v = 0;
      for (int bit = 0; bit < 8; bit++) if (i & (1u << bit)) v ^= basis[8 * k + bit];
      t[k][i] = v;
    }
  }
}

static inline uint32_t shift(const uint32_t t[4][256], uint32_t crc) {
  return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
}

#if defined(__x86_64__)
#include <nmmintrin.h>

static int cpu_has_crc(void) { return __builtin_cpu_supports("sse4.2"); }

#define ATTR __attribute__((target("sse4.2")))
static inline ATTR uint64_t step64(uint64_t crc, uint64_t word) { return _mm_crc32_u64(crc, word); }
static inline ATTR uint32_t step8(uint32_t crc, uint8_t byte) { return _mm_crc32_u8(crc, byte); }

#elif defined(__aarch64__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
#include <arm_acle.h>

static int cpu_has_crc(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }

#define ATTR __attribute__((target("crc")))
static inline ATTR uint64_t step64(uint64_t crc, uint64_t word) { return __crc32cd((uint32_t)crc, word); }
static inline ATTR uint32_t step8(uint32_t crc, uint8_t byte) { return __crc32cb(crc, byte); }

#else
static int cpu_has_crc(void) { return 0; }
#define ATTR
static inline uint64_t step64(uint64_t crc, uint64_t word) { (void)word; return crc; }
static inline uint32_t step8(uint32_t crc, uint8_t byte) { (void)byte; return crc; }
#endif

static void init(void) {
  hw_present = cpu_has_crc();
  if (hw_present) {
    build_shift(shift_long, LONG_BLOCK);
    build_shift(shift_short, SHORT_BLOCK);
  }
}

int ccrc32c_hw_available(void) {
  pthread_once(&init_once, init);
  return hw_present;
}

static inline uint64_t load64(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, 8); /* little-endian on both architectures */
  return w;
}

/* Three interleaved chains over blocks of `block` bytes, joined with `t`. */
static inline ATTR uint32_t three_way(uint32_t crc, const unsigned char **pp, size_t *len,
                                      size_t block, const uint32_t t[4][256]) {
  const unsigned char *p = *pp;
  while (*len >= 3 * block) {
    uint64_t c0 = crc, c1 = 0, c2 = 0;
    const unsigned char *end = p + block;
    do {
      c0 = step64(c0, load64(p));
      c1 = step64(c1, load64(p + block));
      c2 = step64(c2, load64(p + 2 * block));
      p += 8;
    } while (p < end);
    crc = shift(t, (uint32_t)c0) ^ (uint32_t)c1;
    crc = shift(t, crc) ^ (uint32_t)c2;
    p += 2 * block;
    *len -= 3 * block;
  }
  *pp = p;
  return crc;
}

ATTR uint32_t ccrc32c_hw_update(uint32_t crc, const void *buf, size_t len) {
  const unsigned char *p = buf;
  while (len > 0 && ((uintptr_t)p & 7) != 0) {
    crc = step8(crc, *p++);
    len--;
  }
  crc = three_way(crc, &p, &len, LONG_BLOCK, shift_long);
  crc = three_way(crc, &p, &len, SHORT_BLOCK, shift_short);
  uint64_t c = crc;
  while (len >= 8) {
    c = step64(c, load64(p));
    p += 8;
    len -= 8;
  }
  crc = (uint32_t)c;
  while (len > 0) {
    crc = step8(crc, *p++);
    len--;
  }
  return crc;
}
