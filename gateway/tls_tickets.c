/* Session ticket keys shared by every gateway (VTN_TLS_TICKET_KEYS).
 *
 * Without a key file each gateway process makes its own random ticket key,
 * so a VEN resumes only on the gateway that issued its ticket, and after a
 * restart on none: behind a load balancer that spreads reconnecting VENs
 * over N gateways, N - 1 of every N reconnections are full handshakes.
 * With the same file on every gateway (a Kubernetes Secret), any gateway
 * resumes any ticket, also after a restart.
 *
 * The file holds up to GW_TICKET_MAX_KEYS keys, one per line as 160 hex
 * digits (80 bytes: a 16-byte key name, a 32-byte HMAC-SHA256 key, a 32-byte
 * AES-256 key; `openssl rand -hex 80` makes one); blank lines and lines
 * starting with '#' are ignored. The first key encrypts new tickets; the
 * others only decrypt, and a ticket under one of them is replaced by a new
 * one under the first. Rotation: put a new key first, keep the old one for
 * the ticket lifetime (2 h), SIGHUP the gateways. */
#include "tls_tickets.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tls_engine.h"
#include "vtn/log.h"
#include "vtn/tlsconf.h"

#define GW_TICKET_MAX_KEYS 8
#define GW_TICKET_NAME_LEN 16
#define GW_TICKET_SECRET_LEN 32
#define GW_TICKET_LINE_MAX 512

typedef struct gw_ticket_key {
    unsigned char name[GW_TICKET_NAME_LEN];
    unsigned char hmac[GW_TICKET_SECRET_LEN];
    unsigned char aes[GW_TICKET_SECRET_LEN];
} gw_ticket_key;

typedef struct gw_ticket_keys {
    size_t n;
    gw_ticket_key key[GW_TICKET_MAX_KEYS];
} gw_ticket_keys;

static int keys_index = -1; /* SSL_CTX ex_data slot owning its gw_ticket_keys */
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

/* The keys leave memory with the SSL_CTX that used them. */
static void keys_free(void *keys)
{
    OPENSSL_cleanse(keys, sizeof(gw_ticket_keys));
    free(keys);
}

static const gw__tls_ex_dtor keys_dtor = {keys_free};

static void keys_once_init(void)
{
    keys_index = gw__tls_ctx_ex_index(&keys_dtor);
}

static int parse_key(const char *line, gw_ticket_key *k)
{
    unsigned char raw[VTN_TLS_TICKET_KEY_LEN];
    if (vtn_tls_ticket_key_parse(line, raw) < 0)
        return -1;
    memcpy(k->name, raw, GW_TICKET_NAME_LEN);
    memcpy(k->hmac, raw + GW_TICKET_NAME_LEN, GW_TICKET_SECRET_LEN);
    memcpy(k->aes, raw + GW_TICKET_NAME_LEN + GW_TICKET_SECRET_LEN, GW_TICKET_SECRET_LEN);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

static int read_keys(const char *path, gw_ticket_keys *keys, char *err, size_t errlen)
{
    char line[GW_TICKET_LINE_MAX];
    unsigned lineno = 0;
    struct stat st;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        snprintf(err, errlen, "VTN_TLS_TICKET_KEYS: %s: %s", path, strerror(errno));
        return -EINVAL;
    }
    /* the keys decrypt every session, client identity included */
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        vtn_warn("tls_ticket_keys_readable", "file=%s mode=%03o hint=\"chmod 600\"", path,
                 (unsigned)(st.st_mode & 0777));
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "VTN_TLS_TICKET_KEYS: %s: line %u is too long", path, lineno);
            goto bad;
        }
        if (vtn_tls_ticket_key_skip(line))
            continue;
        if (keys->n == GW_TICKET_MAX_KEYS) {
            snprintf(err, errlen, "VTN_TLS_TICKET_KEYS: %s: more than %d keys", path,
                     GW_TICKET_MAX_KEYS);
            goto bad;
        }
        if (parse_key(line, &keys->key[keys->n]) < 0) {
            snprintf(err, errlen,
                     "VTN_TLS_TICKET_KEYS: %s: line %u is not a key (160 hex digits, as "
                     "`openssl rand -hex 80` prints)",
                     path, lineno);
            goto bad;
        }
        for (size_t i = 0; i < keys->n; i++) {
            if (memcmp(keys->key[i].name, keys->key[keys->n].name, GW_TICKET_NAME_LEN) == 0) {
                snprintf(err, errlen, "VTN_TLS_TICKET_KEYS: %s: line %u repeats a key name", path,
                         lineno);
                goto bad;
            }
        }
        keys->n++;
    }
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    if (keys->n == 0) {
        snprintf(err, errlen, "VTN_TLS_TICKET_KEYS: %s: no key", path);
        return -EINVAL;
    }
    return 0;
bad:
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    return -EINVAL;
}

static int set_mac_key(EVP_MAC_CTX *hctx, const gw_ticket_key *k)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* OpenSSL's ticket key callback: 1 = use, 2 = use and issue a new ticket
 * under the current key, 0 = unknown key (full handshake), -1 = error. */
static int ticket_key_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                         EVP_MAC_CTX *hctx, int enc)
{
    const gw_ticket_keys *keys = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), keys_index);
    const gw_ticket_key *k;

    if (keys == NULL || keys->n == 0)
        return -1;
    if (enc) {
        k = &keys->key[0];
        memcpy(name, k->name, GW_TICKET_NAME_LEN);
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1 ||
            EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
            set_mac_key(hctx, k) != 1)
            return -1;
        return 1;
    }
    for (size_t i = 0; i < keys->n; i++) {
        k = &keys->key[i];
        if (memcmp(name, k->name, GW_TICKET_NAME_LEN) != 0)
            continue;
        if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
            set_mac_key(hctx, k) != 1)
            return -1;
        return i == 0 ? 1 : 2;
    }
    return 0;
}

int gw__tls_ticket_keys_load(SSL_CTX *sc, const char *path, char *err, size_t errlen)
{
    gw_ticket_keys *keys;
    int rc;

    pthread_once(&keys_once, keys_once_init);
    if (keys_index < 0) {
        snprintf(err, errlen, "VTN_TLS_TICKET_KEYS: SSL_CTX ex_data index");
        return -ENOMEM;
    }
    keys = calloc(1, sizeof(*keys));
    if (keys == NULL)
        return -ENOMEM;
    rc = read_keys(path, keys, err, errlen);
    if (rc == 0 && SSL_CTX_set_ex_data(sc, keys_index, keys) != 1)
        rc = -ENOMEM;
    if (rc < 0) {
        keys_free(keys);
        return rc;
    }
    /* from here the SSL_CTX owns the keys */
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(sc, ticket_key_cb) != 1) {
        snprintf(err, errlen, "VTN_TLS_TICKET_KEYS: cannot install the ticket key callback");
        return -EINVAL;
    }
    return 0;
}

size_t gw__tls_ticket_keys_count(SSL_CTX *sc)
{
    const gw_ticket_keys *keys;
    if (keys_index < 0)
        return 0;
    keys = SSL_CTX_get_ex_data(sc, keys_index);
    return keys != NULL ? keys->n : 0;
}
