#ifndef CHPKI_ZLIB_SHIM_H
#define CHPKI_ZLIB_SHIM_H
#include <zlib.h>

/* deflateInit2 / inflateInit2 are macros; windowBits 31 means a gzip wrapper. */
static inline int chpki_gzip_deflate_init(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
}
static inline int chpki_gzip_inflate_init(z_stream *stream) {
    return inflateInit2(stream, 31);
}
#endif
