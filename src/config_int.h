/* config_int: the parser state that config.c (option table, sections) and
 * config_check.c (cross-field rules) share. Not part of the config
 * interface: nothing outside these two files includes it. */
#ifndef IOTGW_CONFIG_INT_H
#define IOTGW_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "iotgw/config.h"
#include "iotgw/text.h"

enum sec_kind { SEC_GATEWAY, SEC_LISTENER, SEC_UPSTREAM, SEC_SPOOL, SEC_DECODE, SEC_METRICS, SEC_KINDS };

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

/* The line on which key was set in section s, 0 if it was not. key must be
 * in the option table for s's kind. */
int cfg_key_line(const struct secrec *s, const char *key);

/* The rules between keys and sections, run once the whole file is read;
 * also fills in defaults that depend on other keys. In config_check.c. */
void cfg_cross_checks(struct parser *p);

#endif
