/* auth: the device-trust decisions of a session, as pure functions.
 *
 *   - publish ACL: may this device publish on this topic? (listener key publish_acl)
 *   - client id policy: does the MQTT client id fit the device id? (key client_id)
 *   - password file: is this the device's password? (key password_file)
 *   - Watson IoT `use-token-auth`: which device a password is checked for.
 *
 * Everything takes plain parameters, not config structs, so that config.c can
 * use it to validate keys and session.c to decide; nothing here logs. The
 * one function that touches the file system is auth_pwfile_load (it reads the
 * password file, like cfg_load_file reads the config), and auth_pw_hash_line
 * draws a salt from the OpenSSL RNG.
 *
 * Why PBKDF2-HMAC-SHA256 for the password file (OpenSSL PKCS5_PBKDF2_HMAC):
 * verification runs on the gateway's single event-loop thread, so its cost
 * must be small, fixed and free of memory spikes; PBKDF2 has one cost knob
 * (the iteration count, stored per entry so it can be raised later), is a
 * NIST/FIPS-approved KDF that OpenSSL has shipped and maintained for decades,
 * and needs no memory. scrypt (EVP_PBE_scrypt) resists GPU cracking better per
 * unit of time, but only at parameters (N=2^14, r=8: 16 MiB, ~80 ms) that would
 * stall every other device during each CONNECT. Device secrets should be
 * random (`iotgw passwd -g` makes 144-bit ones), and for those any KDF is
 * out of reach of brute force; the iterations protect the human-chosen rest.
 * See docs/security.md. Short form of the module: auth_.
 *
 * Ownership: a compiled ACL and a password file are the caller's, freed
 * with auth_acl_free / auth_pwfile_free; auth_pwfile_edit's text is the
 * caller's to free(). Views (auth_watson_device) point into the caller's
 * bytes; reasons and entries are written into the caller's buffers. */
#ifndef IOTGW_AUTH_H
#define IOTGW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest device id, as in the rest of the gateway (IOTGW_DEVICE_MAX). */
#define AUTH_DEVICE_MAX 64

/* publish_acl when the listener does not set it. The Watson form has no device
 * id in the topic: on it the device publishes as the connection's identity. */
#define AUTH_ACL_DEFAULT "{device}/# +/{device}/# iot-2/evt/+/fmt/+"
#define AUTH_ACL_NONE "none"
/* subscribe_acl when the listener does not set it: the Watson command
 * topics. Which commands arrive on them is the device's own: the gateway
 * delivers a device only the commands addressed to it. */
#define AUTH_SUBSCRIBE_ACL_DEFAULT "iot-2/cmd/+/fmt/+"
#define AUTH_ACL_PATTERN_MAX 1024 /* bytes per pattern */
#define AUTH_ACL_PATTERNS_MAX 64  /* patterns per ACL */

/* The Watson IoT user name meaning "the device is the <id> of my client id". */
#define AUTH_WATSON_TOKEN_USER "use-token-auth"

/* Password file entry: DEVICE:$iotgw-pbkdf2-sha256$ITERATIONS$SALT$HASH
 * (SALT and HASH standard base64 with padding; HASH is 32 bytes). */
#define AUTH_PW_SCHEME "$iotgw-pbkdf2-sha256$"
#define AUTH_PW_DEFAULT_ITERATIONS 20000u /* ~8 ms on a 2020s x86 core */
#define AUTH_PW_MIN_ITERATIONS 1000u
/* A mistyped count must not stall the event loop for minutes per CONNECT. */
#define AUTH_PW_MAX_ITERATIONS 10000000u
#define AUTH_PW_SALT_LEN 16u /* written by auth_pw_hash_line */
#define AUTH_PW_SALT_MIN 8u  /* accepted when reading */
#define AUTH_PW_SALT_MAX 64u
#define AUTH_PW_HASH_LEN 32u
#define AUTH_PW_MAX_LEN 65535u /* MQTT password field limit (3.1.3.5) */
/* Room for the longest entry auth_pw_hash_line writes, with its NUL. */
#define AUTH_PW_LINE_MAX (AUTH_DEVICE_MAX + 1 + 21 + 8 + 1 + 4 * ((AUTH_PW_SALT_MAX + 2) / 3) + \
			  1 + 4 * ((AUTH_PW_HASH_LEN + 2) / 3) + 1)
#define AUTH_PWFILE_MAX_BYTES (16u * 1024 * 1024)

/* A usable device id: 1..AUTH_DEVICE_MAX bytes of printable ASCII without
 * space, '/', '+' or '#' (ids end up in topics and journald fields). */
bool auth_device_id_valid(const char *id, size_t len);

/* ---- publish ACL ---- */

/* Compiled publish_acl; owned by whoever compiled it. */
struct auth_acl;

/* Checks one pattern: levels separated by '/', each a literal, `+`, `#` (last
 * level only) or exactly `{device}`; 1..AUTH_ACL_PATTERN_MAX bytes, no
 * control characters, '{' and '}' only in a whole {device} level. Returns 0,
 * or -1 with a reason such as "'#' must be the last level" in why. */
int auth_acl_pattern_check(const char *pattern, size_t len, char *why, size_t whylen);

/* Compiles a publish_acl value: whitespace-separated patterns, or the single
 * word "none" (no check: auth_topic_allowed always says yes). Returns 0 and a
 * new ACL in *out (caller frees with auth_acl_free), or -1 with a reason in
 * why that names the offending pattern ("pattern \"a/#/b\": '#' must be the
 * last level"), an empty list, too many patterns, or out of memory. */
__attribute__((warn_unused_result)) int auth_acl_compile(const char *patterns,
							  struct auth_acl **out, char *why,
							  size_t whylen);

/* The same from a list of single patterns (config.c keeps publish_acl as
 * char **): each must pass auth_acl_pattern_check and hold no white space;
 * n == 0 is an error here (compile "none" to disable the check). */
__attribute__((warn_unused_result)) int auth_acl_from_list(const char *const *patterns, size_t n,
							    struct auth_acl **out, char *why,
							    size_t whylen);

/* True for the ACL compiled from "none". */
bool auth_acl_is_none(const struct auth_acl *acl);

/* May `device` publish on topic[0..topic_len)? True when some pattern matches
 * with MQTT 4.7 semantics: levels split at every '/', empty levels are
 * levels, `+` matches exactly one level (also an empty one), a trailing `#`
 * matches any number of levels including none, so "a/#" also matches "a"
 * (4.7.1.2); a topic starting with '$' is not matched by a pattern starting
 * with a wildcard (4.7.2). `{device}` matches a level equal to device; a
 * device id that is empty or contains '/', '+' or '#' never matches it.
 * An empty topic never matches. A NULL acl allows nothing (fail closed: the
 * caller compiles AUTH_ACL_DEFAULT or "none" explicitly). */
bool auth_topic_allowed(const struct auth_acl *acl, const char *device, const char *topic,
			size_t topic_len);

/* May `device` subscribe to filter[0..filter_len) (a valid MQTT filter)?
 * True when some pattern covers it: every topic the filter can match is
 * matched by the pattern ("iot-2/cmd/+/fmt/+" covers
 * "iot-2/cmd/display/fmt/json" and itself, not "iot-2/#"). The same
 * {device} and '$' rules as auth_topic_allowed; NULL allows nothing. */
bool auth_filter_allowed(const struct auth_acl *acl, const char *device, const char *filter,
			 size_t filter_len);

void auth_acl_free(struct auth_acl *acl);

/* ---- client id policy ---- */

enum auth_cid_policy {
	AUTH_CID_MATCH = 0, /* client id == device id, or Watson d:<org>:<type>:<device id> */
	AUTH_CID_EXACT,     /* client id == device id */
	AUTH_CID_ANY,       /* not checked */
};

/* "match", "exact", "any" -> 0; anything else -> -1. */
int auth_cid_policy_parse(const char *s, enum auth_cid_policy *out);
const char *auth_cid_policy_name(enum auth_cid_policy p);

/* Is cid[0..len) a Watson IoT device client id "d:<org>:<type>:<id>" with
 * non-empty org, type and id? Then *id and *idlen (may be NULL) receive the view
 * of <id>: everything after the third ':' (valid as long as cid is). */
bool auth_watson_device(const char *cid, size_t len, const char **id, size_t *idlen);

/* Does client id cid[0..len) satisfy the policy for this device? MATCH and
 * EXACT never accept an invalid device id (see auth_device_id_valid). */
bool auth_client_id_ok(enum auth_cid_policy policy, const char *device, const char *cid,
		       size_t len);

/* ---- password authentication ---- */

/* The device id whose password is checked: the user name, except for the
 * Watson user name "use-token-auth", where it is the <id> of the Watson client
 * id d:<org>:<type>:<id>. username is NULL when the CONNECT had none. Returns
 * 0 with the id copied into out (NUL-terminated; cap >= AUTH_DEVICE_MAX + 1),
 * or -1 with a printable reason in why: no user name, use-token-auth without a
 * Watson client id, or an id that is not a usable device id. */
int auth_password_device(const char *username, size_t ulen, const char *cid, size_t clen,
			 char *out, size_t cap, char *why, size_t whylen);

/* The password file (src/auth_pwfile.c). A parsed password file is owned
 * by whoever parsed/loaded it, and immutable. */
struct auth_pwfile;

/* Receives each problem of a password file: FILE:LINE: message (line 0 for the
 * whole file). msg has no trailing newline. */
typedef void (*auth_diag_fn)(void *ctx, const char *file, int line, const char *msg);

/* Parses text[0..len) named filename. Lines: DEVICE:$iotgw-pbkdf2-sha256$N$SALT$HASH,
 * blank lines, and comments (first non-blank character '#'); a trailing CR is
 * ignored. Each bad line (unknown scheme, bad base64, iterations out of
 * AUTH_PW_MIN..MAX_ITERATIONS, invalid device id, duplicate device) is one
 * diagnostic. Returns the number of errors; on 0, *out is a new pwfile
 * (possibly with no entries), otherwise *out is NULL. */
int auth_pwfile_parse(const char *text, size_t len, const char *filename,
		      struct auth_pwfile **out, auth_diag_fn diag, void *ctx);

/* Reads and parses the file at path. Besides parse errors, refuses (one
 * diagnostic with line 0): a file that cannot be opened or read, that is not a
 * regular file, larger than AUTH_PWFILE_MAX_BYTES, or readable or writable by
 * "others" (mode & 0006): the hashes allow offline guessing, so the file is
 * kept like a private key, root:iotgw 0640. Returns the number of errors. */
int auth_pwfile_load(const char *path, struct auth_pwfile **out, auth_diag_fn diag, void *ctx);

size_t auth_pwfile_count(const struct auth_pwfile *pf);
bool auth_pwfile_has(const struct auth_pwfile *pf, const char *device);

/* Is pw[0..len) the password of device? The hash is compared with
 * CRYPTO_memcmp, and a device without an entry (or NULL) still costs one KDF
 * run against a dummy entry, so response time does not reveal which devices
 * exist. (The dummy uses the highest iteration count in the file: keep all
 * entries at one count, as iotgw passwd does.) False for a NULL pf, an empty
 * (or NULL) password, one longer than AUTH_PW_MAX_LEN, or a KDF failure. */
bool auth_pw_verify(const struct auth_pwfile *pf, const char *device, const uint8_t *pw,
		    size_t len);

/* The same in two halves, so the KDF can run on another thread: lookup
 * copies what the check needs (the device's entry, or the dummy) into a
 * struct the caller owns, check runs the KDF and needs nothing else (it
 * touches no shared state: call it from any thread). verify = both. */
struct auth_pw_entry {
	unsigned iterations;
	uint8_t salt[AUTH_PW_SALT_MAX];
	size_t saltlen;
	uint8_t hash[AUTH_PW_HASH_LEN];
	bool known; /* false: the dummy, so the check fails after a full KDF run */
};
void auth_pw_lookup(const struct auth_pwfile *pf, const char *device, struct auth_pw_entry *out);
bool auth_pw_check(const struct auth_pw_entry *e, const uint8_t *pw, size_t len);

void auth_pwfile_free(struct auth_pwfile *pf);

/* PBKDF2-HMAC-SHA256 (RFC 8018 section 5.2), exposed for known-answer tests.
 * Returns 0, or -1 (OpenSSL failure, iterations 0, lengths over INT_MAX). */
int auth_pbkdf2_sha256(const uint8_t *pw, size_t len, const uint8_t *salt, size_t saltlen,
		       unsigned iterations, uint8_t *out, size_t outlen);

/* Writes the password file entry for device (no newline) into out. salt may
 * be NULL: then AUTH_PW_SALT_LEN bytes come from RAND_bytes; otherwise
 * saltlen (AUTH_PW_SALT_MIN..MAX) bytes are used (tests). Returns 0, or -1
 * with a reason: invalid device id or one containing ':', empty or too long
 * password, iterations out of range, RNG or KDF failure, cap too small
 * (AUTH_PW_LINE_MAX always suffices). */
int auth_pw_hash_line(const char *device, const uint8_t *pw, size_t len, unsigned iterations,
		      const uint8_t *salt, size_t saltlen, char *out, size_t cap, char *why,
		      size_t whylen);

/* The text of a password file with device's entry replaced by `entry` (a line
 * without newline), appended if there was none, or removed when entry is NULL.
 * Every other byte (comments, blank lines, other entries, CRLF line ends) is
 * kept. *found tells whether the device had an entry. Returns 0 with a new
 * NUL-terminated string in *out (caller frees) and its length in *outlen, or
 * -1 when out of memory. Meant for a file auth_pwfile_parse accepted. */
__attribute__((warn_unused_result)) int auth_pwfile_edit(const char *text, size_t len,
							  const char *device, const char *entry,
							  char **out, size_t *outlen, bool *found);

#endif
