/* md5.h — MD5 (RFC 1321), only to check downloaded data sets against their
 * published checksums. Not for anything security-related. */
#ifndef SS_MD5_H
#define SS_MD5_H

#include <stddef.h>
#include <stdint.h>

typedef struct ss_md5 {
    uint32_t s[4];
    uint64_t len;       /* bytes hashed so far */
    uint8_t buf[64];
} ss_md5;

void ss_md5_init(ss_md5 *m);
void ss_md5_update(ss_md5 *m, const void *data, size_t n);
void ss_md5_final(ss_md5 *m, uint8_t out[16]);
/* out: 33 bytes, lowercase hex + NUL. */
void ss_md5_hex(const uint8_t d[16], char out[33]);
/* The MD5 of n bytes at data, as hex into out (33 bytes). */
void ss_md5_buf_hex(const void *data, size_t n, char out[33]);

#endif
