/* config: the /etc/iotgw.conf parser, on top of the line reader in ini.c.
 *
 * Owns the parse: sections and the objects they fill, the defaults, applying
 * one key by its type (strings, paths, numbers with units and ranges,
 * enums) and freeing, all generic over the option table in config_keys.c;
 * the diagnostics sink; and the entry points. Which keys exist, and the code
 * the odd ones need, is config_keys.c's; the rules across keys and sections
 * are config_check.c's. Every problem is reported and parsing continues, so
 * one `iotgw -t` run shows all of them. Pure: no file access except in
 * cfg_load_file. */
#include "iotgw/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "iotgw/decoder.h"
#include "iotgw/ini.h"

#define CFG_FILE_MAX (1024 * 1024)      /* cfg_load_file refuses bigger files */
#define CFG_SECTION_NAME_MAX 32         /* [listener NAME], [decode NAME] */
#define CFG_MSG_MAX 512

static const struct {
	const char *name;
	bool named; /* [kind NAME], any number; else at most once, no name */
} kinds[SEC_KINDS] = {
	[SEC_GATEWAY] = {"gateway", false},
	[SEC_LISTENER] = {"listener", true},
	[SEC_UPSTREAM] = {"upstream", false},
	[SEC_SPOOL] = {"spool", false},
	[SEC_DECODE] = {"decode", true},
	[SEC_METRICS] = {"metrics", false},
	[SEC_DOWNLINK] = {"downlink", false},
};

/* ---- diagnostics ---- */

void cfg_report(struct cfg_diag_sink *d, enum cfg_severity sev, int line, const char *fmt, ...)
{
	if (sev == CFG_ERROR)
		d->errors++;
	if (!d->fn)
		return;
	char msg[CFG_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	d->fn(d->ctx, sev, d->file, line, msg);
}

const char *cfg_quote(const char *s, char *out)
{
	return text_quote(out, CFG_QUOTE_CAP, s, strlen(s), CFG_QUOTE_MAX,
			  TEXT_KEEP_UTF8 | TEXT_UNQUOTED);
}

/* ---- storing values ---- */

static void store_uint(void *field, size_t width, uint64_t v)
{
	switch (width) {
	case 1: {
		uint8_t x = (uint8_t)v;
		memcpy(field, &x, 1);
		break;
	}
	case 2: {
		uint16_t x = (uint16_t)v;
		memcpy(field, &x, 2);
		break;
	}
	case 4: {
		uint32_t x = (uint32_t)v;
		memcpy(field, &x, 4);
		break;
	}
	default: {
		memcpy(field, &v, 8);
		break;
	}
	}
}

static void store_bool(void *field, bool v)
{
	memcpy(field, &v, sizeof v);
}

/* ---- durations: ini's units plus days ---- */

/* ini_parse_duration_ms plus "Nd" (days): certificate and session
 * lifetimes are counted in days. */
static int parse_duration(const char *v, uint64_t *ms)
{
	size_t n = strlen(v);
	if (n < 2 || v[n - 1] != 'd')
		return ini_parse_duration_ms(v, ms);
	size_t k = n - 1;
	while (k > 0 && (v[k - 1] == ' ' || v[k - 1] == '\t'))
		k--;
	if (k == 0 || strspn(v, "0123456789") != k)
		return INI_ESYNTAX;
	char num[24];
	if (k >= sizeof num)
		return INI_ERANGE;
	memcpy(num, v, k);
	num[k] = '\0';
	uint64_t days;
	int rc = ini_parse_uint(num, &days);
	if (rc != 0)
		return rc;
	if (days > UINT64_MAX / CFG_DAY)
		return INI_ERANGE;
	*ms = days * CFG_DAY;
	return 0;
}

static void format_duration(uint64_t ms, char *out, size_t cap)
{
	if (ms != 0 && ms % CFG_DAY == 0)
		snprintf(out, cap, "%" PRIu64 "d", ms / CFG_DAY);
	else
		ini_format_duration_ms(ms, out, cap);
}

/* ---- section objects: defaults and freeing, driven by the table ---- */

/* Fills obj with the defaults of kind k; returns -1 when out of memory. A
 * custom key with a default is set through its setter, which reports its
 * own failure through p as coming from line. */
static int obj_defaults(struct parser *p, enum sec_kind k, void *obj, int line)
{
	int rc = 0;
	for (size_t i = 0; i < cfg_nopts; i++) {
		const struct opt *o = &cfg_opts[i];
		if (o->sec != k)
			continue;
		char *field = (char *)obj + o->off;
		switch (o->type) {
		case T_STR: {
			char *s = NULL;
			if (o->def_str && !(s = strdup(o->def_str)))
				rc = -1;
			memcpy(field, &s, sizeof s);
			break;
		}
		case T_UINT:
		case T_SIZE:
		case T_ENUM:
			store_uint(field, o->width, o->def_u);
			break;
		case T_DURATION:
			store_uint(field, o->width, o->def_u / o->unit_ms);
			break;
		case T_BOOL:
			store_bool(field, o->def_u != 0);
			break;
		case T_DOUBLE:
			memcpy(field, &o->def_d, sizeof o->def_d);
			break;
		case T_CUSTOM:
			if (o->def_str)
				(void)o->set(p, obj, o->def_str, line);
			break;
		case T_PATH:
			break; /* zero: not set */
		}
	}
	return rc;
}

static void obj_free(enum sec_kind k, void *obj)
{
	for (size_t i = 0; i < cfg_nopts; i++) {
		const struct opt *o = &cfg_opts[i];
		if (o->sec != k)
			continue;
		char *field = (char *)obj + o->off;
		if (o->type == T_STR) {
			char *s;
			memcpy(&s, field, sizeof s);
			free(s);
			s = NULL;
			memcpy(field, &s, sizeof s);
		} else if (o->type == T_PATH) {
			struct cfg_path *cp = (struct cfg_path *)(void *)field;
			free(cp->path);
			cp->path = NULL;
		} else if (o->type == T_CUSTOM && o->release) {
			o->release(obj);
		}
	}
	if (k == SEC_LISTENER) {
		struct cfg_listener *l = obj;
		free(l->name);
		l->name = NULL;
	} else if (k == SEC_DECODE) {
		struct dec_rule *r = obj;
		free(r->name);
		r->name = NULL;
	}
}

static size_t obj_size(enum sec_kind k)
{
	switch (k) {
	case SEC_GATEWAY:
		return sizeof(struct cfg_gateway);
	case SEC_LISTENER:
		return sizeof(struct cfg_listener);
	case SEC_UPSTREAM:
		return sizeof(struct cfg_upstream);
	case SEC_SPOOL:
		return sizeof(struct cfg_spool);
	case SEC_METRICS:
		return sizeof(struct cfg_metrics);
	case SEC_DOWNLINK:
		return sizeof(struct cfg_downlink);
	default:
		return sizeof(struct dec_rule);
	}
}

static void *sec_obj(struct parser *p, const struct secrec *s)
{
	if (s->scratch)
		return s->scratch_obj;
	switch (s->kind) {
	case SEC_GATEWAY:
		return &p->cfg->gateway;
	case SEC_LISTENER:
		return &p->cfg->listeners[s->index];
	case SEC_UPSTREAM:
		return &p->cfg->upstream;
	case SEC_SPOOL:
		return &p->cfg->spool;
	case SEC_METRICS:
		return &p->cfg->metrics;
	case SEC_DOWNLINK:
		return &p->cfg->downlink;
	default:
		return &p->cfg->rules[s->index];
	}
}

/* ---- applying one key ---- */

static void set_value(struct parser *p, void *obj, const struct opt *o, const char *v, int line)
{
	char *field = (char *)obj + o->off;
	char qv[CFG_QUOTE_CAP], lo[32], hi[32], why[256];
	uint64_t u = 0;
	int rc;

	cfg_quote(v, qv); /* for the messages */
	switch (o->type) {
	case T_STR:
	case T_PATH: {
		why[0] = '\0';
		if (o->check && o->check(v, why, sizeof why) != 0) {
			cfg_diag(p, CFG_ERROR, line, "invalid value '%s' for '%s': %s", qv,
				 o->key, why);
			return;
		}
		char *dup = NULL;
		if (*v != '\0' && !(dup = strdup(v))) {
			cfg_diag(p, CFG_ERROR, line, "out of memory");
			return;
		}
		if (o->type == T_PATH) {
			struct cfg_path *cp = (struct cfg_path *)(void *)field;
			free(cp->path);
			cp->path = dup;
			cp->line = line;
		} else {
			char *old;
			memcpy(&old, field, sizeof old);
			free(old);
			memcpy(field, &dup, sizeof dup);
		}
		return;
	}
	case T_BOOL: {
		bool b;
		if (ini_parse_bool(v, &b) != 0) {
			cfg_diag(p, CFG_ERROR, line,
				 "invalid value '%s' for '%s' (allowed: yes, no, true, false, on, "
				 "off, 1, 0)",
				 qv, o->key);
			return;
		}
		store_bool(field, b);
		return;
	}
	case T_UINT:
		rc = ini_parse_uint(v, &u);
		if (rc == INI_ESYNTAX) {
			cfg_diag(p, CFG_ERROR, line,
				 "invalid value '%s' for '%s': not a whole number", qv,
				 o->key);
			return;
		}
		if (rc == INI_ERANGE || u < o->min || u > o->max) {
			cfg_diag(p, CFG_ERROR, line,
				 "value '%s' for '%s' out of range %" PRIu64 "..%" PRIu64, qv,
				 o->key, o->min, o->max);
			return;
		}
		store_uint(field, o->width, u);
		return;
	case T_DURATION:
		format_duration(o->min, lo, sizeof lo);
		format_duration(o->max, hi, sizeof hi);
		rc = parse_duration(v, &u);
		if (rc == INI_ESYNTAX) {
			cfg_diag(p, CFG_ERROR, line,
				 "invalid duration '%s' for '%s' (use e.g. 10, 10s, 500ms, 2m, 1h)",
				 qv, o->key);
			return;
		}
		if (rc == INI_ERANGE || (u < o->min && !(o->zero_ok && u == 0)) || u > o->max) {
			cfg_diag(p, CFG_ERROR, line, "duration '%s' for '%s' out of range %s%s..%s",
				 qv, o->key, o->zero_ok ? "0 or " : "", lo, hi);
			return;
		}
		if (u % o->unit_ms != 0) {
			cfg_diag(p, CFG_ERROR, line, "duration '%s' for '%s' must be whole seconds",
				 qv, o->key);
			return;
		}
		store_uint(field, o->width, u / o->unit_ms);
		return;
	case T_SIZE:
		ini_format_size(o->min, lo, sizeof lo);
		ini_format_size(o->max, hi, sizeof hi);
		rc = ini_parse_size(v, &u);
		if (rc == INI_ESYNTAX) {
			cfg_diag(p, CFG_ERROR, line,
				 "invalid size '%s' for '%s' (use e.g. 16384, 16K, 64M, 1G)",
				 qv, o->key);
			return;
		}
		if (rc == INI_ERANGE || u < o->min || u > o->max) {
			cfg_diag(p, CFG_ERROR, line, "size '%s' for '%s' out of range %s..%s",
				 qv, o->key, lo, hi);
			return;
		}
		store_uint(field, o->width, u);
		return;
	case T_DOUBLE: {
		double d;
		rc = ini_parse_double(v, &d);
		if (rc == INI_ESYNTAX) {
			cfg_diag(p, CFG_ERROR, line, "invalid value '%s' for '%s': not a number",
				 qv, o->key);
			return;
		}
		if (rc == INI_ERANGE) {
			cfg_diag(p, CFG_ERROR, line, "value '%s' for '%s' out of range", qv,
				 o->key);
			return;
		}
		memcpy(field, &d, sizeof d);
		return;
	}
	case T_ENUM: {
		for (size_t i = 0; o->names[i]; i++) {
			if (strcmp(v, o->names[i]) == 0) {
				store_uint(field, o->width, (uint64_t)o->values[i]);
				return;
			}
		}
		char allowed[128];
		size_t n = 0;
		allowed[0] = '\0';
		for (size_t i = 0; o->names[i] && n < sizeof allowed; i++) {
			int w = snprintf(allowed + n, sizeof allowed - n, "%s%s", i ? ", " : "",
					 o->names[i]);
			if (w < 0)
				break;
			n += (size_t)w;
		}
		cfg_diag(p, CFG_ERROR, line, "invalid value '%s' for '%s' (allowed: %s)", qv,
			 o->key, allowed);
		return;
	}
	case T_CUSTOM:
		o->set(p, obj, v, line);
		return;
	}
}

/* ---- sections ---- */

bool cfg_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	return n >= 1 && n <= max &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static void end_section(struct parser *p)
{
	if (p->in_sec) {
		struct secrec *s = &p->secs[p->cur];
		if (s->scratch && s->scratch_obj) {
			obj_free(s->kind, s->scratch_obj);
			free(s->scratch_obj);
			s->scratch_obj = NULL;
		}
	}
	p->in_sec = false;
	p->skipping = false;
}

/* Makes room for element n of arr (capacity *cap, elements of elsize bytes);
 * returns the possibly moved array, or NULL (arr untouched) when out of memory. */
static void *grow(void *arr, size_t n, size_t *cap, size_t elsize)
{
	if (n < *cap)
		return arr;
	size_t ncap = *cap ? *cap * 2 : 4;
	if (ncap > SIZE_MAX / elsize)
		return NULL;
	void *na = realloc(arr, ncap * elsize);
	if (na)
		*cap = ncap;
	return na;
}

static const struct secrec *find_section(struct parser *p, enum sec_kind k, const char *name)
{
	for (size_t i = 0; i < p->nsecs; i++) {
		const struct secrec *s = &p->secs[i];
		if (s->scratch || s->kind != k)
			continue;
		if (!kinds[k].named)
			return s;
		const char *other = k == SEC_LISTENER ? p->cfg->listeners[s->index].name
						      : p->cfg->rules[s->index].name;
		if (other && strcmp(other, name) == 0)
			return s;
	}
	return NULL;
}

/* A new section record; NULL when out of memory. */
static struct secrec *new_secrec(struct parser *p, enum sec_kind kind, int line)
{
	struct secrec *ns = grow(p->secs, p->nsecs, &p->capsecs, sizeof *ns);
	if (!ns)
		return NULL;
	p->secs = ns;
	struct secrec *s = &p->secs[p->nsecs];
	memset(s, 0, sizeof *s);
	s->kind = kind;
	s->line = line;
	s->seen = calloc(cfg_nopts, sizeof *s->seen);
	if (!s->seen)
		return NULL;
	p->nsecs++;
	return s;
}

/* The object keys of a new section go to: the embedded struct, a new
 * listeners[]/rules[] element with its defaults, or a scratch object. */
static void *new_obj(struct parser *p, struct secrec *s, const char *name)
{
	struct iotgw_config *c = p->cfg;
	void *obj;
	if (s->scratch) {
		obj = s->scratch_obj = calloc(1, obj_size(s->kind));
	} else if (s->kind == SEC_LISTENER) {
		struct cfg_listener *nl = grow(c->listeners, c->nlisteners, &p->listeners_cap,
					       sizeof *nl);
		if (!nl)
			return NULL;
		c->listeners = nl;
		s->index = c->nlisteners++;
		obj = &c->listeners[s->index];
		memset(obj, 0, sizeof *nl);
	} else if (s->kind == SEC_DECODE) {
		struct dec_rule *nr = grow(c->rules, c->nrules, &p->rules_cap, sizeof *nr);
		if (!nr)
			return NULL;
		c->rules = nr;
		s->index = c->nrules++;
		obj = &c->rules[s->index];
		memset(obj, 0, sizeof *nr);
	} else {
		return sec_obj(p, s); /* embedded, defaults applied at the start */
	}
	if (!obj)
		return NULL;
	if (obj_defaults(p, s->kind, obj, s->line) != 0)
		cfg_diag(p, CFG_ERROR, s->line, "out of memory");
	if (s->kind == SEC_LISTENER || s->kind == SEC_DECODE) {
		char *nm = strdup(name);
		if (!nm)
			cfg_diag(p, CFG_ERROR, s->line, "out of memory");
		if (s->kind == SEC_LISTENER) {
			struct cfg_listener *l = obj;
			l->name = nm;
			l->line = s->line;
		} else {
			struct dec_rule *r = obj;
			r->name = nm;
			r->line = s->line;
		}
	}
	return obj;
}

/* hdr: the text between [ and ], "kind" or "kind NAME"; klen: the length of
 * "kind"; name: "NAME" or "". */
static void begin_section(struct parser *p, const char *hdr, size_t klen, const char *name,
			  int line)
{
	char qb[CFG_QUOTE_CAP], qn[CFG_QUOTE_CAP];
	end_section(p);
	int k = -1;
	for (int i = 0; i < SEC_KINDS; i++)
		if (strlen(kinds[i].name) == klen && memcmp(hdr, kinds[i].name, klen) == 0)
			k = i;
	if (k < 0) {
		cfg_diag(p, CFG_ERROR, line,
			 "unknown section [%s] (expected [gateway], [listener NAME], [upstream], "
			 "[spool] or [decode NAME])",
			 cfg_quote(hdr, qb));
		p->skipping = true;
		return;
	}
	enum sec_kind kind = (enum sec_kind)k;
	const char *kn = kinds[kind].name;
	/* A badly named [listener]/[decode] is parsed into a scratch object so that
	 * its keys are still checked; a name on [gateway] etc. is only an error. */
	bool scratch = false;
	if (kinds[kind].named && *name == '\0') {
		cfg_diag(p, CFG_ERROR, line, "section [%s] needs a name: [%s NAME]", kn, kn);
		scratch = true;
	} else if (kinds[kind].named && !cfg_name_ok(name, CFG_SECTION_NAME_MAX)) {
		cfg_diag(p, CFG_ERROR, line,
			 "invalid section name '%s' (use 1-%d characters A-Z a-z 0-9 . _ -)",
			 cfg_quote(name, qn), CFG_SECTION_NAME_MAX);
		scratch = true;
	} else if (!kinds[kind].named && *name != '\0') {
		cfg_diag(p, CFG_ERROR, line, "section [%s] takes no name", kn);
	}
	const struct secrec *first = scratch ? NULL : find_section(p, kind, name);
	if (first) {
		if (kinds[kind].named)
			cfg_diag(p, CFG_ERROR, line,
				 "duplicate section [%s %s], first at line %d", kn, name,
				 first->line);
		else
			cfg_diag(p, CFG_ERROR, line, "duplicate section [%s], first at line %d", kn,
				 first->line);
		scratch = true;
	}

	struct secrec *s = new_secrec(p, kind, line);
	if (!s) {
		cfg_diag(p, CFG_ERROR, line, "out of memory");
		p->skipping = true;
		return;
	}
	s->scratch = scratch;
	if (kinds[kind].named && *name)
		snprintf(s->label, sizeof s->label, "[%s %s]", kn, cfg_quote(name, qn));
	else
		snprintf(s->label, sizeof s->label, "[%s]", kn);
	if (!new_obj(p, s, name)) {
		s->scratch = true; /* keys are ignored; keep the record for end_section */
		cfg_diag(p, CFG_ERROR, line, "out of memory");
		p->skipping = true;
		return;
	}
	p->cur = p->nsecs - 1;
	p->in_sec = true;
}

static void set_key(struct parser *p, const char *key, const char *value, int lineno)
{
	char qb[CFG_QUOTE_CAP];
	if (p->skipping)
		return;
	if (!p->in_sec) {
		cfg_diag(p, CFG_ERROR, lineno, "key '%s' outside any section", cfg_quote(key, qb));
		return;
	}
	struct secrec *s = &p->secs[p->cur];
	size_t idx;
	const struct opt *o = cfg_opt_find(s->kind, key, &idx);
	if (!o) {
		cfg_diag(p, CFG_ERROR, lineno, "unknown key '%s' in section %s", cfg_quote(key, qb),
			 s->label);
		return;
	}
	if (s->seen[idx]) {
		cfg_diag(p, CFG_ERROR, lineno, "duplicate key '%s', first set at line %d", o->key,
			 s->seen[idx]);
		return;
	}
	s->seen[idx] = lineno;
	if (*value == '\0' && !o->empty_ok) {
		cfg_diag(p, CFG_ERROR, lineno, "empty value for '%s'", o->key);
		return;
	}
	set_value(p, sec_obj(p, s), o, value, lineno);
}

/* The ini_read callback: every line that is not blank or a comment. */
static void on_line(void *ctx, const struct ini_line *l)
{
	struct parser *p = ctx;
	char qb[CFG_QUOTE_CAP];
	switch (l->ev) {
	case INI_SECTION:
		begin_section(p, l->text, l->kind_len, l->name, l->line);
		return;
	case INI_KEY:
		set_key(p, l->key, l->value, l->line);
		return;
	case INI_TOO_LONG:
		cfg_diag(p, CFG_ERROR, l->line, "line too long (more than %d bytes)", INI_LINE_MAX);
		return;
	case INI_CONTROL:
		cfg_diag(p, CFG_ERROR, l->line, "control character 0x%02x in line", l->ch);
		return;
	case INI_BAD_HEADER:
		cfg_diag(p, CFG_ERROR, l->line, "malformed section header '%s' (missing ']')",
			 cfg_quote(l->text, qb));
		end_section(p);
		p->skipping = true; /* its keys would only add noise */
		return;
	case INI_NO_EQUALS:
		/* not echoed: it may be a mistyped "password: secret" */
		cfg_diag(p, CFG_ERROR, l->line,
			 "malformed line (expected 'key = value', '[section]' or a comment)");
		return;
	case INI_NO_KEY:
		cfg_diag(p, CFG_ERROR, l->line, "missing key before '='");
		return;
	}
}

/* ---- entry points ---- */

int cfg_parse_string(const char *text, size_t len, const char *filename,
		     struct iotgw_config *out, cfg_diag_fn diagfn, void *ctx)
{
	memset(out, 0, sizeof *out);
	struct parser p = {.cfg = out};
	p.out = (struct cfg_diag_sink){filename ? filename : "<config>", diagfn, ctx, 0};
	if (filename && !(out->path = strdup(filename)))
		cfg_diag(&p, CFG_ERROR, 0, "out of memory");
	if (obj_defaults(&p, SEC_GATEWAY, &out->gateway, 0) != 0 ||
	    obj_defaults(&p, SEC_UPSTREAM, &out->upstream, 0) != 0 ||
	    obj_defaults(&p, SEC_SPOOL, &out->spool, 0) != 0 ||
	    obj_defaults(&p, SEC_DOWNLINK, &out->downlink, 0) != 0)
		cfg_diag(&p, CFG_ERROR, 0, "out of memory");

	if (ini_read(text, len, on_line, &p) != 0) {
		cfg_diag(&p, CFG_ERROR, 0, "out of memory");
		return p.out.errors;
	}
	end_section(&p);
	cfg_cross_checks(&p);

	for (size_t i = 0; i < p.nsecs; i++)
		free(p.secs[i].seen);
	free(p.secs);
	return p.out.errors;
}

int cfg_load_file(const char *path, struct iotgw_config *out, cfg_diag_fn diagfn, void *ctx)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t n = 0;
	int err = 0;
	const char *what = NULL;
	if (!f) {
		err = errno;
	} else {
		data = malloc(CFG_FILE_MAX + 1);
		if (!data) {
			err = ENOMEM;
		} else {
			n = fread(data, 1, CFG_FILE_MAX + 1, f);
			if (ferror(f))
				err = errno ? errno : EIO;
			else if (n > CFG_FILE_MAX)
				what = "file too large (more than 1 MiB)";
		}
		fclose(f);
	}
	if (err || what) {
		memset(out, 0, sizeof *out);
		out->path = strdup(path);
		if (diagfn) {
			char msg[CFG_MSG_MAX];
			if (what)
				snprintf(msg, sizeof msg, "%s", what);
			else
				snprintf(msg, sizeof msg, "cannot read: %s", strerror(err));
			diagfn(ctx, CFG_ERROR, path, 0, msg);
		}
		free(data);
		return 1;
	}
	int rc = cfg_parse_string(data, n, path, out, diagfn, ctx);
	free(data);
	return rc;
}

void cfg_free(struct iotgw_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	obj_free(SEC_GATEWAY, &cfg->gateway);
	obj_free(SEC_UPSTREAM, &cfg->upstream);
	obj_free(SEC_SPOOL, &cfg->spool);
	obj_free(SEC_METRICS, &cfg->metrics);
	obj_free(SEC_DOWNLINK, &cfg->downlink);
	for (size_t i = 0; i < cfg->nlisteners; i++)
		obj_free(SEC_LISTENER, &cfg->listeners[i]);
	free(cfg->listeners);
	for (size_t i = 0; i < cfg->nrules; i++)
		obj_free(SEC_DECODE, &cfg->rules[i]);
	free(cfg->rules);
	memset(cfg, 0, sizeof *cfg);
}

void cfg_diag_print(void *ctx, enum cfg_severity sev, const char *file, int line,
		    const char *msg)
{
	FILE *f = ctx ? ctx : stderr;
	const char *w = sev == CFG_WARNING ? "warning: " : "";
	if (line > 0)
		fprintf(f, "%s:%d: %s%s\n", file, line, w, msg);
	else
		fprintf(f, "%s: %s%s\n", file, w, msg);
}
