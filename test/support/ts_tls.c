/* ts_tls.c - see ts_tls.h. */
#include "ts_tls.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ts_tls {
  EVP_PKEY *ca_key, *leaf_key;
  X509 *ca, *leaf;
  SSL_CTX *ctx;
  char path[4096]; /* the CA file; "" until it exists */
  char cert_path[4096], key_path[4096]; /* ts_tls_server_files(); "" until then */
};

static EVP_PKEY *p256_key(void) {
  EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  EVP_PKEY *k = NULL;
  if (kc && EVP_PKEY_keygen_init(kc) > 0 &&
      EVP_PKEY_CTX_set_group_name(kc, "P-256") > 0)
    EVP_PKEY_generate(kc, &k);
  EVP_PKEY_CTX_free(kc);
  return k;
}

/* Adds extension nid with the configuration string value (as in
 * openssl.cnf); issuer may be NULL for a self-signed certificate. */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer ? issuer : cert, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
  if (!ext)
    return 0;
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok;
}

/* A certificate for key, named cn, signed by issuer_key (issuer NULL:
 * self-signed). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                       EVP_PKEY *issuer_key) {
  X509 *c = X509_new();
  if (!c)
    return NULL;
  unsigned char serial[16];
  BIGNUM *bn = NULL;
  if (RAND_bytes(serial, sizeof serial) != 1)
    goto fail;
  serial[0] &= 0x7f; /* positive */
  bn = BN_bin2bn(serial, sizeof serial, NULL);
  if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)))
    goto fail;
  BN_free(bn);
  bn = NULL;
  if (!X509_set_version(c, 2) || !X509_gmtime_adj(X509_getm_notBefore(c), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(c), 86400L * 2) ||
      !X509_set_pubkey(c, key))
    goto fail;
  X509_NAME *name = X509_get_subject_name(c);
  if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                  (const unsigned char *)"libeventsource tests",
                                  -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  (const unsigned char *)cn, -1, -1, 0))
    goto fail;
  if (!X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name))
    goto fail;
  return c;
fail:
  BN_free(bn);
  X509_free(c);
  return NULL;
}

static void tls_fail(const char *what) {
  fprintf(stderr, "ts_tls: %s failed\n", what);
  ERR_print_errors_fp(stderr);
}

/* Writes cert (or, when cert is NULL, key) in PEM to a new temporary file
 * named TMPDIR/ts_tls_<what>_XXXXXX, whose name goes to path (left "" when
 * it could not be made). 0, or -1 with a line on stderr. */
static int write_pem(char *path, size_t size, const char *what, X509 *cert,
                     EVP_PKEY *key) {
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir)
    dir = "/tmp";
  snprintf(path, size, "%s/ts_tls_%s_XXXXXX", dir, what);
  int fd = mkstemp(path);
  if (fd < 0) {
    fprintf(stderr, "ts_tls: mkstemp(%s) failed\n", path);
    path[0] = '\0';
    return -1;
  }
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(path);
    path[0] = '\0';
    return -1;
  }
  int ok = cert ? PEM_write_X509(f, cert) == 1
                : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
  if (fclose(f) != 0)
    ok = 0;
  if (!ok) {
    fprintf(stderr, "ts_tls: writing %s (%s) failed\n", path, what);
    ERR_print_errors_fp(stderr);
    return -1;
  }
  return 0;
}

ts_tls *ts_tls_new(const char *san) {
  ts_tls *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  if (!san || !*san)
    san = "IP:127.0.0.1";

  /* The CA. */
  if (!(t->ca_key = p256_key()) ||
      !(t->ca = make_cert(t->ca_key, "libeventsource test CA", NULL, NULL)) ||
      !add_ext(t->ca, NULL, NID_basic_constraints, "critical,CA:TRUE") ||
      !add_ext(t->ca, NULL, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_ext(t->ca, NULL, NID_subject_key_identifier, "hash") ||
      !add_ext(t->ca, NULL, NID_authority_key_identifier, "keyid:always") ||
      !X509_sign(t->ca, t->ca_key, EVP_sha256())) {
    tls_fail("making the CA");
    goto fail;
  }

  /* The leaf. */
  if (!(t->leaf_key = p256_key()) ||
      !(t->leaf = make_cert(t->leaf_key, "libeventsource test server", t->ca,
                            t->ca_key)) ||
      !add_ext(t->leaf, t->ca, NID_basic_constraints, "critical,CA:FALSE") ||
      !add_ext(t->leaf, t->ca, NID_key_usage, "critical,digitalSignature") ||
      !add_ext(t->leaf, t->ca, NID_ext_key_usage, "serverAuth") ||
      !add_ext(t->leaf, t->ca, NID_subject_key_identifier, "hash") ||
      !add_ext(t->leaf, t->ca, NID_authority_key_identifier, "keyid:always") ||
      !add_ext(t->leaf, t->ca, NID_subject_alt_name, san) ||
      !X509_sign(t->leaf, t->ca_key, EVP_sha256())) {
    tls_fail("making the server certificate");
    goto fail;
  }

  /* The server's context. */
  t->ctx = SSL_CTX_new(TLS_server_method());
  if (!t->ctx || !SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) ||
      SSL_CTX_use_certificate(t->ctx, t->leaf) != 1 ||
      SSL_CTX_use_PrivateKey(t->ctx, t->leaf_key) != 1 ||
      SSL_CTX_check_private_key(t->ctx) != 1) {
    tls_fail("the server context");
    goto fail;
  }
  SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);

  /* The CA file. */
  if (write_pem(t->path, sizeof t->path, "ca", t->ca, NULL) != 0)
    goto fail;
  return t;
fail:
  ts_tls_free(t);
  return NULL;
}

const char *ts_tls_ca_file(const ts_tls *t) { return t->path; }

struct ssl_ctx_st *ts_tls_ssl_ctx(const ts_tls *t) { return t->ctx; }

int ts_tls_server_files(ts_tls *t, const char **cert_file, const char **key_file) {
  if (!t->cert_path[0] &&
      write_pem(t->cert_path, sizeof t->cert_path, "cert", t->leaf, NULL) != 0)
    return -1;
  if (!t->key_path[0] &&
      write_pem(t->key_path, sizeof t->key_path, "key", NULL, t->leaf_key) != 0)
    return -1;
  *cert_file = t->cert_path;
  *key_file = t->key_path;
  return 0;
}

void ts_tls_free(ts_tls *t) {
  if (!t)
    return;
  if (t->path[0])
    unlink(t->path);
  if (t->cert_path[0])
    unlink(t->cert_path);
  if (t->key_path[0])
    unlink(t->key_path);
  SSL_CTX_free(t->ctx);
  X509_free(t->leaf);
  X509_free(t->ca);
  EVP_PKEY_free(t->leaf_key);
  EVP_PKEY_free(t->ca_key);
  free(t);
}

CURLcode ts_tls_trust_ca(eventsource_t *es, CURL *easy, void *userdata) {
  (void)es;
  return curl_easy_setopt(easy, CURLOPT_CAINFO, (const char *)userdata);
}
