/* libFuzzer target for src/mqtt_codec.c.
 *
 * The input is treated as a byte stream from a client: frames are parsed one
 * after another and every complete one goes to its decoder, the way the
 * session does it. Then the decoders, the UTF-8 validator and the topic
 * matcher are also run on the raw input, and the encoders are round-tripped
 * through our own parser. Invariants are checked with abort() so that a wrong
 * answer is reported like a crash; ASan/UBSan catch the rest. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iotgw/mqtt_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT (1u << 20)

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void check_view(struct mqtt_str s, const uint8_t *body, size_t len)
{
	if (s.len == 0)
		return;
	const uint8_t *p = (const uint8_t *)s.ptr;
	check(p >= body && p <= body + len && s.len <= (size_t)(body + len - p));
}

/* Reference UTF-8 check (1.5.3) written differently from the codec: decode
 * each code point, then reject overlong forms, surrogates, > U+10FFFF, U+0000. */
static bool ref_utf8(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n;
		uint8_t c = s[i];
		if (c < 0x80) {
			cp = c;
			n = 0;
		} else if ((c & 0xe0) == 0xc0) {
			cp = c & 0x1fu;
			n = 1;
		} else if ((c & 0xf0) == 0xe0) {
			cp = c & 0x0fu;
			n = 2;
		} else if ((c & 0xf8) == 0xf0) {
			cp = c & 0x07u;
			n = 3;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3fu);
		}
		static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
		if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0)
			return false;
		i += n + 1;
	}
	return true;
}

/* Reference matcher (4.7), level by level. */
static bool ref_match(const char *f, const char *t, size_t tlen)
{
	size_t flen = strlen(f);
	if (!mqtt_filter_valid(f, flen))
		return false;
	if (tlen > 0 && t[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;
	size_t fp = 0, tp = 0;
	bool t_has_level = true;
	for (;;) {
		size_t fe = fp;
		while (fe < flen && f[fe] != '/')
			fe++;
		if (fe - fp == 1 && f[fp] == '#')
			return true;
		if (!t_has_level)
			return false;
		size_t te = tp;
		while (te < tlen && t[te] != '/')
			te++;
		bool plus = fe - fp == 1 && f[fp] == '+';
		if (!plus && (fe - fp != te - tp || memcmp(f + fp, t + tp, fe - fp) != 0))
			return false;
		bool f_more = fe < flen, t_more = te < tlen;
		if (!f_more)
			return !t_more;
		fp = fe + 1;
		if (t_more)
			tp = te + 1;
		else
			t_has_level = false;
	}
}

static char g_filter[65536 + 1];

static const char *as_cstr(const void *p, size_t len)
{
	if (len > sizeof(g_filter) - 1)
		len = sizeof(g_filter) - 1;
	memcpy(g_filter, p, len);
	g_filter[len] = '\0';
	return g_filter;
}

static void check_ack_roundtrip(enum mqtt_type type, uint16_t id)
{
	uint8_t out[4];
	check(mqtt_encode_ack(out, sizeof(out), type, id) == 4);
	struct mqtt_frame fr;
	check(mqtt_frame_parse(out, sizeof(out), LIMIT, &fr, NULL) == MQTT_OK);
	check(fr.type == type && fr.header_len == 2 && fr.remaining_length == 2);
	uint16_t got = 0;
	check(mqtt_decode_ack(out + 2, 2, &got, NULL) == MQTT_OK && got == id);
}

static uint8_t g_codes[8192];
static uint8_t g_suback[8192 + 8];

/* Every filter the decoder counted is there, valid, and a command for it
 * encodes to a PUBLISH the decoder takes back (the downlink's path). */
static void check_filters(const uint8_t *body, size_t len, bool with_qos, size_t count)
{
	struct mqtt_str f;
	uint8_t qos;
	for (size_t i = 0; i < count; i++) {
		check(mqtt_filter_at(body, len, with_qos, i, &f, &qos));
		check(mqtt_filter_valid(f.ptr, f.len) && qos <= 2);
		uint8_t out[256];
		size_t n = mqtt_encode_publish(out, sizeof out, f.ptr, f.len, body, len < 64 ? len : 64,
					       1, true, 7);
		/* A topic name has no wildcards (the decoder refuses them). */
		if (n && !memchr(f.ptr, '+', f.len) && !memchr(f.ptr, '#', f.len)) {
			struct mqtt_publish pub;
			size_t hdr = out[1] & 0x80 ? 3 : 2;
			const char *why = NULL;
			check(mqtt_decode_publish(out[0] & 0x0f, out + hdr, n - hdr, &pub, &why) ==
			      MQTT_OK);
			check(pub.dup && pub.qos == 1 && pub.packet_id == 7 &&
			      pub.topic.len == f.len);
		}
	}
	check(!mqtt_filter_at(body, len, with_qos, count, &f, &qos));
}

static void check_suback(uint16_t id, size_t count)
{
	if (count > sizeof(g_codes))
		count = sizeof(g_codes);
	for (size_t i = 0; i < count; i++)
		g_codes[i] = (uint8_t)(i % 3 == 2 ? 0x80 : i % 3);
	size_t n = mqtt_encode_suback(g_suback, sizeof(g_suback), id, g_codes, count);
	check(n > 0);
	check(g_suback[0] == 0x90);
	/* Our parser refuses SUBACK from a client; borrow PUBLISH's first byte
	 * to read back the remaining length. */
	g_suback[0] = 0x30;
	struct mqtt_frame fr;
	check(mqtt_frame_parse(g_suback, n, LIMIT, &fr, NULL) == MQTT_OK);
	check(fr.remaining_length == 2 + count && fr.header_len + fr.remaining_length == n);
	check(g_suback[fr.header_len] == (id >> 8) && g_suback[fr.header_len + 1] == (id & 0xff));
	check(memcmp(g_suback + fr.header_len + 2, g_codes, count) == 0);
	check(mqtt_encode_suback(g_suback, n - 1, id, g_codes, count) == 0);
}

static void check_publish(const struct mqtt_publish *p, const uint8_t *body, size_t len)
{
	check_view(p->topic, body, len);
	check(p->topic.len > 0);
	check(mqtt_utf8_valid(p->topic.ptr, p->topic.len));
	check(memchr(p->topic.ptr, '+', p->topic.len) == NULL);
	check(memchr(p->topic.ptr, '#', p->topic.len) == NULL);
	check(p->qos <= 2);
	check((p->packet_id != 0) == (p->qos > 0));
	check(!(p->dup && p->qos == 0));
	check(p->payload >= body && p->payload_len <= (size_t)(body + len - p->payload));
	check(p->payload + p->payload_len == body + len);
	/* A topic name is a filter that matches exactly itself. */
	const char *f = as_cstr(p->topic.ptr, p->topic.len);
	check(mqtt_filter_valid(f, p->topic.len));
	check(mqtt_topic_matches(f, p->topic.ptr, p->topic.len));
	check(mqtt_topic_matches("#", p->topic.ptr, p->topic.len) == (p->topic.ptr[0] != '$'));
	if (p->qos > 0) {
		check_ack_roundtrip(p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id);
		check_ack_roundtrip(MQTT_PUBREL, p->packet_id);
		check_ack_roundtrip(MQTT_PUBCOMP, p->packet_id);
	}
}

static void check_connect(const struct mqtt_connect *c, const uint8_t *body, size_t len)
{
	check_view(c->protocol_name, body, len);
	if (c->refuse == MQTT_CONNACK_BAD_PROTOCOL_VERSION) {
		/* Name is "MQTT" (len 4) or "MQIsdp" (len 6); neither with its own level. */
		check(!(c->protocol_name.len == 4 && c->protocol_level == 4));
		check(!(c->protocol_name.len == 6 && c->protocol_level == 3));
	} else {
		check(c->refuse == MQTT_CONNACK_ACCEPTED ||
		      c->refuse == MQTT_CONNACK_IDENTIFIER_REJECTED);
		check(c->protocol_level == 3 || c->protocol_level == 4);
		check_view(c->client_id, body, len);
		check(mqtt_utf8_valid(c->client_id.ptr, c->client_id.len));
		check(c->has_will || (c->will_qos == 0 && !c->will_retain));
		check(c->will_qos <= 2);
		check(!c->has_password || c->has_username);
		if (c->has_will) {
			check_view(c->will_topic, body, len);
			check_view(c->will_message, body, len);
			check(c->will_topic.len > 0);
			check(mqtt_utf8_valid(c->will_topic.ptr, c->will_topic.len));
		}
		if (c->has_username) {
			check_view(c->username, body, len);
			check(mqtt_utf8_valid(c->username.ptr, c->username.len));
		}
		if (c->has_password)
			check_view(c->password, body, len);
		check((c->refuse == MQTT_CONNACK_IDENTIFIER_REJECTED) ==
		      (c->client_id.len == 0 && (c->protocol_level == 3 || !c->clean_session)));
	}
	uint8_t out[4];
	check(mqtt_encode_connack(out, sizeof(out), true, (uint8_t)c->refuse) == 4);
	check(out[0] == 0x20 && out[1] == 2 && out[3] == c->refuse);
	check(out[2] == (c->refuse == MQTT_CONNACK_ACCEPTED ? 1 : 0));
}

static void decode_body(uint8_t type, uint8_t flags, const uint8_t *body, size_t len)
{
	const char *why = NULL;
	uint16_t id = 0;
	size_t count = 0;
	enum mqtt_result r;

	switch (type) {
	case MQTT_CONNECT: {
		struct mqtt_connect c;
		r = mqtt_decode_connect(flags, body, len, &c, &why);
		if (r == MQTT_OK)
			check_connect(&c, body, len);
		break;
	}
	case MQTT_PUBLISH: {
		struct mqtt_publish p;
		r = mqtt_decode_publish(flags, body, len, &p, &why);
		if (r == MQTT_OK)
			check_publish(&p, body, len);
		break;
	}
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		r = mqtt_decode_ack(body, len, &id, &why);
		if (r == MQTT_OK) {
			check(id != 0 && len == 2);
			check_ack_roundtrip((enum mqtt_type)type, id);
		}
		break;
	case MQTT_SUBSCRIBE:
		r = mqtt_decode_subscribe(body, len, &id, &count, &why);
		if (r == MQTT_OK) {
			/* Each filter takes at least 2 + 1 + 1 bytes. */
			check(id != 0 && count >= 1 && count <= (len - 2) / 4);
			check_suback(id, count);
			check_filters(body, len, true, count);
		}
		break;
	case MQTT_UNSUBSCRIBE:
		r = mqtt_decode_unsubscribe(body, len, &id, &count, &why);
		if (r == MQTT_OK) {
			check(id != 0 && count >= 1 && count <= (len - 2) / 3);
			check_filters(body, len, false, count);
			uint8_t out[4];
			check(mqtt_encode_ack(out, sizeof(out), MQTT_UNSUBACK, id) == 4);
			check(out[0] == 0xb0 && out[1] == 2 && out[2] == (id >> 8) &&
			      out[3] == (id & 0xff));
		}
		break;
	default:
		return;
	}
	check(r == MQTT_OK || r == MQTT_E_MALFORMED);
	check(r == MQTT_OK || why != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* 1. The input as a stream of frames. */
	size_t off = 0;
	while (off < size) {
		struct mqtt_frame fr;
		const char *why = NULL;
		enum mqtt_result r = mqtt_frame_parse(data + off, size - off, LIMIT, &fr, &why);
		struct mqtt_frame fr_max;
		enum mqtt_result r_max = mqtt_frame_parse(data + off, size - off,
							  MQTT_MAX_REMAINING_LENGTH, &fr_max, NULL);
		if (r == MQTT_E_TOO_LARGE)
			check(r_max == MQTT_OK && fr_max.remaining_length > LIMIT);
		else
			check(r_max == r);
		if (r != MQTT_OK) {
			check(why != NULL);
			break;
		}
		check(fr.header_len >= 2 && fr.header_len <= 5 && fr.header_len <= size - off);
		check(fr.remaining_length <= LIMIT);
		check(fr.type == (data[off] >> 4) && fr.flags == (data[off] & 0xf));

		/* Re-encoding the length gives back exactly the bytes read. */
		uint8_t vi[4];
		size_t vn = mqtt_varint_encode(fr.remaining_length, vi);
		check(vn == fr.header_len - 1 && memcmp(vi, data + off + 1, vn) == 0);

		if (size - off - fr.header_len < fr.remaining_length)
			break; /* incomplete: a receiver would wait for more */
		decode_body((uint8_t)fr.type, fr.flags, data + off + fr.header_len,
			    fr.remaining_length);
		off += fr.header_len + fr.remaining_length;
	}

	if (size == 0)
		return 0;

	/* 2. The decoders on the raw bytes, whatever the framing says. */
	uint8_t type = data[0] >> 4, flags = data[0] & 0xf;
	decode_body(type, flags, data + 1, size - 1);
	struct mqtt_connect c;
	if (mqtt_decode_connect(0, data + 1, size - 1, &c, NULL) == MQTT_OK)
		check_connect(&c, data + 1, size - 1);
	struct mqtt_publish p;
	if (mqtt_decode_publish(flags, data + 1, size - 1, &p, NULL) == MQTT_OK)
		check_publish(&p, data + 1, size - 1);

	/* 3. UTF-8 against the reference. */
	check(mqtt_utf8_valid((const char *)data, size) == ref_utf8(data, size));

	/* 4. Matching: bytes before the first '\n' are the filter, the rest the
	 * topic; compare against the reference matcher. */
	const uint8_t *nl = memchr(data, '\n', size);
	size_t flen = nl ? (size_t)(nl - data) : size;
	const char *filter = as_cstr(data, flen);
	const char *topic = nl ? (const char *)nl + 1 : "";
	size_t tlen = nl ? size - flen - 1 : 0;
	check(mqtt_topic_matches(filter, topic, tlen) == ref_match(filter, topic, tlen));
	(void)mqtt_filter_valid((const char *)data, size);

	/* 5. Varint round trip of a value taken from the input. */
	if (size >= 4) {
		uint32_t v = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
			     (uint32_t)data[3] << 24;
		uint8_t buf[5] = {0x30};
		size_t n = mqtt_varint_encode(v, buf + 1);
		if (v > MQTT_MAX_REMAINING_LENGTH) {
			check(n == 0);
		} else {
			struct mqtt_frame fr;
			check(n >= 1 && n <= 4);
			check(mqtt_frame_parse(buf, 1 + n, MQTT_MAX_REMAINING_LENGTH, &fr, NULL) ==
			      MQTT_OK);
			check(fr.remaining_length == v && fr.header_len == 1 + n);
		}

		/* 6. Encoders with arguments taken from the input: either a
		 * complete packet or 0, never a write past cap (ASan watches
		 * g_suback). */
		size_t cap = data[0] % 8;
		uint16_t id = (uint16_t)(data[1] << 8 | data[2]);
		enum mqtt_type t = (enum mqtt_type)(data[3] & 0xf);
		uint8_t out[8];
		n = mqtt_encode_ack(out, cap, t, id);
		bool ack_type = t == MQTT_PUBACK || t == MQTT_PUBREC || t == MQTT_PUBREL ||
				t == MQTT_PUBCOMP || t == MQTT_UNSUBACK;
		check(n == ((ack_type && id != 0 && cap >= 4) ? 4 : 0));
		check(mqtt_encode_pingresp(out, cap) == (cap >= 2 ? 2 : 0));
		check(mqtt_encode_connack(out, cap, data[3] & 1, data[0]) == (cap >= 4 ? 4 : 0));

		const uint8_t *codes = data + 4;
		size_t ncodes = size - 4 > sizeof(g_suback) - 8 ? sizeof(g_suback) - 8 : size - 4;
		bool codes_ok = ncodes > 0;
		for (size_t i = 0; i < ncodes; i++)
			codes_ok = codes_ok && (codes[i] <= 2 || codes[i] == 0x80);
		size_t scap = sizeof(g_suback) - (data[0] % 16);
		n = mqtt_encode_suback(g_suback, scap, id, codes, ncodes);
		size_t total = 1 + (2 + ncodes < 128 ? 1 : 2) + 2 + ncodes;
		if (!codes_ok || id == 0 || total > scap)
			check(n == 0);
		else
			check(n == total);
	}
	return 0;
}
