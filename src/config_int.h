/* config_int: what the three files of the config module share: the parser
 * state, the shape of the option table and who provides what. config.c
 * (sections, applying a key by its type, diagnostics, entry points),
 * config_keys.c (the option table, its checks and custom setters) and
 * config_check.c (cross-field rules). Not part of the config interface:
 * nothing outside these three files includes it. */
#ifndef IOTGW_CONFIG_INT_H
#define IOTGW_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotgw/config.h"
#include "iotgw/ini.h"
#include "iotgw/text.h"

#define CFG_DAY (24 * INI_HOUR) /* durations are in milliseconds; ini has no days */

enum sec_kind { SEC_GATEWAY, SEC_LISTENER, SEC_UPSTREAM, SEC_SPOOL, SEC_DECODE, SEC_METRICS, SEC_DOWNLINK, SEC_KINDS };

/* Per section instance: where it started and on which line each key was set,
 * kept until the cross-field checks run. */
struct secrec {
	enum sec_kind kind;
	int line;
	size_t index;       /* into listeners[] / rules[] for named kinds */
	bool scratch;       /* duplicate or badly named section: parsed, then discarded */
	void *scratch_obj;
	char label[96];     /* "[listener a]" for messages */
	int *seen;          /* [nopts]: line of each key, 0 when not set */
};

struct parser {
	struct iotgw_config *cfg;
	struct cfg_diag_sink out; /* its error count is cfg_parse_string's result */
	struct secrec *secs;
	size_t nsecs, capsecs;
	size_t cur;    /* index into secs of the current section */
	bool in_sec;   /* cur is valid */
	bool skipping; /* inside an unknown section: its keys are ignored */
	size_t listeners_cap, rules_cap;
};

enum opt_type {
	T_STR,      /* char *, strdup'd */
	T_PATH,     /* struct cfg_path */
	T_BOOL,     /* bool, ini_parse_bool syntax */
	T_UINT,     /* unsigned integer of `width` bytes, min..max */
	T_DURATION, /* unsigned of `width` bytes in units of `unit_ms`, min..max in ms */
	T_SIZE,     /* unsigned of `width` bytes, min..max bytes */
	T_DOUBLE,   /* double, finite */
	T_ENUM,     /* one of names[], stored as values[] in `width` bytes */
	T_CUSTOM,   /* set() does everything */
};

struct opt {
	enum sec_kind sec;
	const char *key;
	enum opt_type type;
	size_t off;   /* offset of the field in the section's struct */
	size_t width; /* sizeof the field, for integers, enums and bools */
	uint64_t min, max;
	unsigned unit_ms; /* T_DURATION: 1 (field in ms) or 1000 (field in seconds) */
	bool zero_ok;     /* T_DURATION: 0 allowed as well as min..max ("no limit") */
	bool empty_ok;    /* "key =" allowed: stores NULL */
	const char *const *names; /* T_ENUM, NULL-terminated */
	const int *values;
	const char *def_str;
	uint64_t def_u;
	double def_d;
	/* T_STR: extra validation; 0 ok, else -1 and a reason in why */
	int (*check)(const char *v, char *why, size_t whylen);
	/* T_CUSTOM: 0 ok, else -1 after reporting through p; def_str, when
	 * set, is the default applied through it */
	int (*set)(struct parser *p, void *obj, const char *v, int line);
	/* T_CUSTOM: frees what set() allocated in obj (may be NULL) */
	void (*release)(void *obj);
};

/* ---- config_keys.c ---- */

/* The option table: every key of every section kind. */
extern const struct opt cfg_opts[];
extern const size_t cfg_nopts;

/* The entry of key in sections of kind k, and its index in cfg_opts (for
 * secrec.seen); NULL when there is none. */
const struct opt *cfg_opt_find(enum sec_kind k, const char *key, size_t *idx);

/* The line on which key was set in section s, 0 if it was not. key must be
 * in the option table for s's kind. */
int cfg_key_line(const struct secrec *s, const char *key);

/* ---- config.c ---- */

/* cfg_diag(p, sev, line, fmt, ...): reports through p's sink as
 * FILE:line (0: the whole file); an error counts towards the result of
 * cfg_parse_string. */
#define cfg_diag(p, ...) cfg_report(&(p)->out, __VA_ARGS__)

/* A value echoed in a message, inside the message's own quotes ('%s'): its
 * first CFG_QUOTE_MAX bytes, UTF-8 kept (the operator's own text), anything
 * unprintable as \xHH, so that a config file cannot forge log lines. out
 * has CFG_QUOTE_CAP bytes; returns out. */
#define CFG_QUOTE_MAX 60
#define CFG_QUOTE_CAP TEXT_QUOTE_CAP(CFG_QUOTE_MAX)
const char *cfg_quote(const char *s, char *out);

/* 1..max characters A-Z a-z 0-9 . _ - (section and gateway names). */
bool cfg_name_ok(const char *s, size_t max);

/* ---- config_check.c ---- */

/* The rules between keys and sections, run once the whole file is read;
 * also fills in defaults that depend on other keys. */
void cfg_cross_checks(struct parser *p);

#endif
