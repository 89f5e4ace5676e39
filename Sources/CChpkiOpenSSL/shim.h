#ifndef CHPKI_OPENSSL_SHIM_H
#define CHPKI_OPENSSL_SHIM_H

/* Only the OpenSSL 3 API: deprecated RSA_* / EC_KEY_* vanish, so only EVP code compiles. */
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED 1

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
/* pem.h before cms.h: cms.h declares PEM_read_bio_CMS only when pem.h came first. */
#include <openssl/pem.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

/* Composite macro constants Swift cannot import. */
static const unsigned long CHPKI_XN_FLAG_RFC2253 = XN_FLAG_RFC2253;
static const unsigned long CHPKI_XN_FLAG_RFC2253_UTF8 = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
static const unsigned long CHPKI_XN_FLAG_ONELINE = XN_FLAG_ONELINE;
static const int CHPKI_EVP_PKEY_PUBLIC_KEY = EVP_PKEY_PUBLIC_KEY;

/* Function-like macros, as functions. */
static inline void chpki_free(void *p) { OPENSSL_free(p); }

static inline long chpki_bio_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }

static inline void chpki_x509v3_set_ctx_nodb(X509V3_CTX *ctx) { X509V3_set_ctx_nodb(ctx); }

static inline int chpki_bio_set_close(BIO *bio) { return (int)BIO_set_close(bio, BIO_NOCLOSE); }

/* Typed stack helpers: OpenSSL's sk_TYPE_* are macros over OPENSSL_sk_*. */
static inline GENERAL_NAMES *chpki_general_names_new(void) { return sk_GENERAL_NAME_new_null(); }
static inline int chpki_general_names_push(GENERAL_NAMES *names, GENERAL_NAME *name) {
    return sk_GENERAL_NAME_push(names, name);
}
static inline int chpki_general_names_count(const GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
static inline GENERAL_NAME *chpki_general_names_get(const GENERAL_NAMES *names, int i) {
    return sk_GENERAL_NAME_value(names, i);
}
static inline void chpki_general_names_free(GENERAL_NAMES *names) { GENERAL_NAMES_free(names); }

static inline STACK_OF(GENERAL_SUBTREE) *chpki_subtrees_new(void) { return sk_GENERAL_SUBTREE_new_null(); }
static inline int chpki_subtrees_push(STACK_OF(GENERAL_SUBTREE) *s, GENERAL_SUBTREE *t) {
    return sk_GENERAL_SUBTREE_push(s, t);
}
static inline int chpki_subtrees_count(const STACK_OF(GENERAL_SUBTREE) *s) { return s ? sk_GENERAL_SUBTREE_num(s) : 0; }
static inline GENERAL_SUBTREE *chpki_subtrees_get(const STACK_OF(GENERAL_SUBTREE) *s, int i) {
    return sk_GENERAL_SUBTREE_value(s, i);
}

static inline int chpki_eku_count(const EXTENDED_KEY_USAGE *eku) { return sk_ASN1_OBJECT_num(eku); }
static inline ASN1_OBJECT *chpki_eku_get(const EXTENDED_KEY_USAGE *eku, int i) { return sk_ASN1_OBJECT_value(eku, i); }

static inline STACK_OF(X509) *chpki_x509_stack_new(void) { return sk_X509_new_null(); }
static inline int chpki_x509_stack_push(STACK_OF(X509) *s, X509 *x) { return sk_X509_push(s, x); }
static inline void chpki_x509_stack_free(STACK_OF(X509) *s) { sk_X509_free(s); }

/* The PEM password callback that never prompts: chpki reads passphrases itself. The password, if any,
 * arrives through `u` as a NUL-terminated string. */
static inline int chpki_pem_password_cb(char *buf, int size, int rwflag, void *u) {
    (void)rwflag;
    if (u == NULL) return -1;
    size_t len = strlen((const char *)u);
    if (len > (size_t)size) return -1;
    memcpy(buf, u, len);
    return (int)len;
}
static inline pem_password_cb *chpki_pem_password_callback(void) { return chpki_pem_password_cb; }

/* scrypt through EVP_KDF: the OSSL_PARAM array keeps pointers to its keys and values, which Swift
 * cannot keep alive across calls, so the array is built here on the C stack. */
static inline int chpki_scrypt(const unsigned char *pass, size_t pass_len, const unsigned char *salt, size_t salt_len,
                               uint64_t n, uint32_t r, uint32_t p, uint64_t maxmem, unsigned char *out, size_t out_len) {
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    if (kdf == NULL) return 0;
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (ctx == NULL) return 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pass, pass_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    int result = EVP_KDF_derive(ctx, out, out_len, params);
    EVP_KDF_CTX_free(ctx);
    return result;
}

/* TLS client (health checks): SSL_set_tlsext_host_name and SSL_CTX_add1_chain_cert are macros. */
static inline int chpki_ssl_set_sni(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
static inline int chpki_ssl_ctx_tls12_minimum(SSL_CTX *ctx) { return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }
static inline int chpki_ssl_ctx_add1_chain_cert(SSL_CTX *ctx, X509 *x) { return (int)SSL_CTX_add1_chain_cert(ctx, x); }

#endif
