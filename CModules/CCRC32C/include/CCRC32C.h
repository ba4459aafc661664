#ifndef CCRC32C_H
#define CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C (Castagnoli) with the CPU's CRC instructions: SSE4.2 crc32 on x86-64, the ARMv8
 * CRC32C instructions on arm64. The register is the raw one (no initial or final inversion),
 * as in the table-driven update `crc = t[(crc ^ b) & 0xff] ^ (crc >> 8)`.
 *
 * ccrc32c_hw_available: 1 when this CPU has the instructions (checked once at run time),
 * else 0; ccrc32c_hw_update must then not be called. */
int ccrc32c_hw_available(void);
uint32_t ccrc32c_hw_update(uint32_t crc, const void *buf, size_t len);

#endif
