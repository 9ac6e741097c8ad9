/* Unit tests for src/mqtt_codec.c (cmocka). Section numbers: MQTT 3.1.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iotgw/mqtt_codec.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------------------
 * Packet builder
 */

struct pkt {
	uint8_t b[70000];
	size_t len;
};

static struct pkt g_body; /* scratch: too big for the stack of every test */
static struct pkt g_frame;

static void put_u8(struct pkt *p, uint8_t v)
{
	assert_true(p->len < sizeof(p->b));
	p->b[p->len++] = v;
}

static void put_u16(struct pkt *p, uint16_t v)
{
	put_u8(p, (uint8_t)(v >> 8));
	put_u8(p, (uint8_t)(v & 0xff));
}

static void put_bytes(struct pkt *p, const void *d, size_t n)
{
	assert_true(n <= sizeof(p->b) - p->len);
	if (n)
		memcpy(p->b + p->len, d, n);
	p->len += n;
}

/* A 1.5.3 length-prefixed field. */
static void put_lstr(struct pkt *p, const void *d, size_t n)
{
	assert_true(n <= 0xffff);
	put_u16(p, (uint16_t)n);
	put_bytes(p, d, n);
}

static void put_str(struct pkt *p, const char *s)
{
	put_lstr(p, s, strlen(s));
}

/* Wraps body into a frame with first byte b0. */
static void make_frame(struct pkt *f, uint8_t b0, const struct pkt *body)
{
	uint8_t vi[4];
	size_t vn = mqtt_varint_encode((uint32_t)body->len, vi);
	assert_true(vn > 0);
	f->len = 0;
	put_u8(f, b0);
	put_bytes(f, vi, vn);
	put_bytes(f, body->b, body->len);
}

struct connect_args {
	const char *name;
	uint8_t level;
	uint8_t flags; /* written as is: tests choose inconsistent ones on purpose */
	uint16_t keepalive;
	const char *client_id;
	const char *will_topic; /* NULL: field absent */
	const char *will_msg;
	const char *user;
	const char *pass;
};

static void build_connect(struct pkt *p, const struct connect_args *a)
{
	p->len = 0;
	put_str(p, a->name);
	put_u8(p, a->level);
	put_u8(p, a->flags);
	put_u16(p, a->keepalive);
	put_str(p, a->client_id);
	if (a->will_topic)
		put_str(p, a->will_topic);
	if (a->will_msg)
		put_str(p, a->will_msg);
	if (a->user)
		put_str(p, a->user);
	if (a->pass)
		put_str(p, a->pass);
}

static enum mqtt_result decode_connect_args(const struct connect_args *a, struct mqtt_connect *c)
{
	const char *why = NULL;
	build_connect(&g_body, a);
	enum mqtt_result r = mqtt_decode_connect(0, g_body.b, g_body.len, c, &why);
	if (r != MQTT_OK)
		assert_non_null(why);
	return r;
}

static void build_publish(struct pkt *p, const void *topic, size_t topic_len, uint16_t id,
			  bool with_id, const char *payload)
{
	p->len = 0;
	put_lstr(p, topic, topic_len);
	if (with_id)
		put_u16(p, id);
	put_bytes(p, payload, strlen(payload));
}

static bool str_is(struct mqtt_str s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* What a receiver does with the bytes it has so far: INCOMPLETE until the
 * whole frame is there, then the decoder's verdict. */
static enum mqtt_result stream_step(const uint8_t *buf, size_t len, uint32_t max)
{
	struct mqtt_frame fr;
	enum mqtt_result r = mqtt_frame_parse(buf, len, max, &fr, NULL);
	if (r != MQTT_OK)
		return r;
	if (len - fr.header_len < fr.remaining_length)
		return MQTT_INCOMPLETE;
	const uint8_t *body = buf + fr.header_len;
	size_t blen = fr.remaining_length;
	uint16_t id;
	size_t n;
	switch (fr.type) {
	case MQTT_CONNECT: {
		struct mqtt_connect c;
		return mqtt_decode_connect(fr.flags, body, blen, &c, NULL);
	}
	case MQTT_PUBLISH: {
		struct mqtt_publish p;
		return mqtt_decode_publish(fr.flags, body, blen, &p, NULL);
	}
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return mqtt_decode_ack(body, blen, &id, NULL);
	case MQTT_SUBSCRIBE:
		return mqtt_decode_subscribe(body, blen, &id, &n, NULL);
	case MQTT_UNSUBSCRIBE:
		return mqtt_decode_unsubscribe(body, blen, &id, &n, NULL);
	default:
		return MQTT_OK;
	}
}

static const struct connect_args k_full_connect = {
	.name = "MQTT",
	.level = 4,
	.flags = 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02, /* user, pass, will r/q1, clean */
	.keepalive = 60,
	.client_id = "d:org:type:dev0001",
	.will_topic = "iot-2/evt/lwt/fmt/json",
	.will_msg = "gone",
	.user = "use-token-auth",
	.pass = "s3cret",
};

/* ---------------------------------------------------------------------------
 * Varint (2.2.3)
 */

struct varint_case {
	uint32_t value;
	size_t n;
	uint8_t bytes[4];
};

static const struct varint_case k_varints[] = {
	{0, 1, {0x00}},
	{1, 1, {0x01}},
	{127, 1, {0x7f}},
	{128, 2, {0x80, 0x01}},
	{321, 2, {0xc1, 0x02}},
	{16383, 2, {0xff, 0x7f}},
	{16384, 3, {0x80, 0x80, 0x01}},
	{2097151, 3, {0xff, 0xff, 0x7f}},
	{2097152, 4, {0x80, 0x80, 0x80, 0x01}},
	{268435455, 4, {0xff, 0xff, 0xff, 0x7f}},
};

static void test_varint_encode_boundaries(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(k_varints); i++) {
		uint8_t out[4] = {0};
		size_t n = mqtt_varint_encode(k_varints[i].value, out);
		assert_int_equal(n, k_varints[i].n);
		assert_memory_equal(out, k_varints[i].bytes, n);
	}
}

static void test_varint_encode_too_large(void **state)
{
	(void)state;
	uint8_t out[4];
	assert_int_equal(mqtt_varint_encode(268435456u, out), 0);
	assert_int_equal(mqtt_varint_encode(UINT32_MAX, out), 0);
}

static void test_frame_varint_boundaries(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(k_varints); i++) {
		const struct varint_case *c = &k_varints[i];
		uint8_t buf[5] = {0x30};
		memcpy(buf + 1, c->bytes, c->n);
		struct mqtt_frame fr;
		const char *why = NULL;
		assert_int_equal(mqtt_frame_parse(buf, 1 + c->n, MQTT_MAX_REMAINING_LENGTH, &fr,
						  &why),
				 MQTT_OK);
		assert_int_equal(fr.type, MQTT_PUBLISH);
		assert_int_equal(fr.flags, 0);
		assert_int_equal(fr.remaining_length, c->value);
		assert_int_equal(fr.header_len, 1 + c->n);
		/* Every shorter prefix is an incomplete header. */
		for (size_t k = 0; k < 1 + c->n; k++)
			assert_int_equal(mqtt_frame_parse(buf, k, MQTT_MAX_REMAINING_LENGTH,
							  &fr, NULL),
					 MQTT_INCOMPLETE);
	}
}

static void test_frame_varint_roundtrip_sweep(void **state)
{
	(void)state;
	for (uint64_t v = 0; v <= MQTT_MAX_REMAINING_LENGTH; v = v * 3 + 1) {
		uint8_t buf[5] = {0x30};
		size_t n = mqtt_varint_encode((uint32_t)v, buf + 1);
		assert_true(n >= 1 && n <= 4);
		struct mqtt_frame fr;
		assert_int_equal(mqtt_frame_parse(buf, 1 + n, MQTT_MAX_REMAINING_LENGTH, &fr,
						  NULL),
				 MQTT_OK);
		assert_int_equal(fr.remaining_length, v);
	}
}

static void test_frame_five_byte_varint(void **state)
{
	(void)state;
	struct mqtt_frame fr;
	const char *why = NULL;
	const uint8_t five[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x7f};
	assert_int_equal(mqtt_frame_parse(five, sizeof(five), MQTT_MAX_REMAINING_LENGTH, &fr,
					  &why),
			 MQTT_E_MALFORMED);
	assert_non_null(why);
	/* Rejected as soon as the 4th byte says "more follows". */
	const uint8_t four_cont[] = {0x30, 0x80, 0x80, 0x80, 0x80};
	assert_int_equal(mqtt_frame_parse(four_cont, sizeof(four_cont),
					  MQTT_MAX_REMAINING_LENGTH, &fr, NULL),
			 MQTT_E_MALFORMED);
}

static void test_frame_non_minimal_varint(void **state)
{
	(void)state;
	struct mqtt_frame fr;
	const uint8_t a[] = {0x30, 0x80, 0x00};
	const uint8_t b[] = {0x30, 0xff, 0x80, 0x00};
	const uint8_t c[] = {0x30, 0x80, 0x80, 0x80, 0x00};
	assert_int_equal(mqtt_frame_parse(a, sizeof(a), 1000, &fr, NULL), MQTT_E_MALFORMED);
	assert_int_equal(mqtt_frame_parse(b, sizeof(b), 1000000, &fr, NULL), MQTT_E_MALFORMED);
	assert_int_equal(mqtt_frame_parse(c, sizeof(c), 1000000, &fr, NULL), MQTT_E_MALFORMED);
}

static void test_frame_too_large(void **state)
{
	(void)state;
	struct mqtt_frame fr;
	const char *why = NULL;
	uint8_t buf[5] = {0x30};
	size_t n = mqtt_varint_encode(16385, buf + 1);
	/* Only the header is here: the verdict must not wait for the body. */
	assert_int_equal(mqtt_frame_parse(buf, 1 + n, 16384, &fr, &why), MQTT_E_TOO_LARGE);
	assert_non_null(why);
	n = mqtt_varint_encode(16384, buf + 1);
	assert_int_equal(mqtt_frame_parse(buf, 1 + n, 16384, &fr, NULL), MQTT_OK);
	assert_int_equal(fr.remaining_length, 16384);

	const uint8_t huge[] = {0x10, 0xff, 0xff, 0xff, 0x7f};
	assert_int_equal(mqtt_frame_parse(huge, sizeof(huge), 0, &fr, NULL), MQTT_E_TOO_LARGE);
	assert_int_equal(mqtt_frame_parse(huge, sizeof(huge), 16384, &fr, NULL),
			 MQTT_E_TOO_LARGE);
	assert_int_equal(mqtt_frame_parse(huge, sizeof(huge), MQTT_MAX_REMAINING_LENGTH, &fr,
					  NULL),
			 MQTT_OK);
	assert_int_equal(mqtt_frame_parse(huge, sizeof(huge), UINT32_MAX, &fr, NULL), MQTT_OK);
	const uint8_t zero[] = {0x30, 0x00};
	assert_int_equal(mqtt_frame_parse(zero, sizeof(zero), 0, &fr, NULL), MQTT_OK);
}

static void test_frame_forbidden_types(void **state)
{
	(void)state;
	const uint8_t types[] = {0, MQTT_CONNACK, MQTT_SUBACK, MQTT_UNSUBACK, MQTT_PINGRESP, 15};
	for (size_t i = 0; i < ARRAY_LEN(types); i++) {
		for (unsigned fl = 0; fl < 16; fl++) {
			uint8_t buf[] = {(uint8_t)(types[i] << 4 | fl), 0x02, 0, 1};
			struct mqtt_frame fr;
			const char *why = NULL;
			assert_int_equal(mqtt_frame_parse(buf, sizeof(buf), 1000, &fr, &why),
					 MQTT_E_MALFORMED);
			assert_non_null(why);
			/* Also known from the first byte alone. */
			assert_int_equal(mqtt_frame_parse(buf, 1, 1000, &fr, NULL),
					 MQTT_E_MALFORMED);
		}
	}
}

/* 2.2.2 Table 2.2: the only legal flags of each type a client sends. */
static void test_frame_flags_per_type(void **state)
{
	(void)state;
	static const struct {
		enum mqtt_type type;
		uint8_t rl;
		int required; /* -1: PUBLISH, anything but QoS 3 */
	} k[] = {
		{MQTT_CONNECT, 12, 0},    {MQTT_PUBLISH, 5, -1},   {MQTT_PUBACK, 2, 0},
		{MQTT_PUBREC, 2, 0},      {MQTT_PUBREL, 2, 2},     {MQTT_PUBCOMP, 2, 0},
		{MQTT_SUBSCRIBE, 6, 2},   {MQTT_UNSUBSCRIBE, 5, 2}, {MQTT_PINGREQ, 0, 0},
		{MQTT_DISCONNECT, 0, 0},
	};
	for (size_t i = 0; i < ARRAY_LEN(k); i++) {
		for (unsigned fl = 0; fl < 16; fl++) {
			uint8_t buf[] = {(uint8_t)(k[i].type << 4 | fl), k[i].rl};
			bool ok = k[i].required < 0 ? ((fl >> 1) & 3) != 3
						    : fl == (unsigned)k[i].required;
			struct mqtt_frame fr;
			enum mqtt_result r = mqtt_frame_parse(buf, sizeof(buf), 1000, &fr, NULL);
			assert_int_equal(r, ok ? MQTT_OK : MQTT_E_MALFORMED);
			if (ok) {
				assert_int_equal(fr.type, k[i].type);
				assert_int_equal(fr.flags, fl);
				assert_int_equal(fr.header_len, 2);
			}
		}
	}
}

static void test_frame_fixed_size_lengths(void **state)
{
	(void)state;
	static const struct {
		uint8_t b0;
		uint8_t good;
	} k[] = {
		{0x40, 2}, {0x50, 2}, {0x62, 2}, {0x70, 2}, {0xc0, 0}, {0xe0, 0},
	};
	for (size_t i = 0; i < ARRAY_LEN(k); i++) {
		for (unsigned rl = 0; rl < 6; rl++) {
			uint8_t buf[] = {k[i].b0, (uint8_t)rl};
			struct mqtt_frame fr;
			assert_int_equal(mqtt_frame_parse(buf, sizeof(buf), 1000, &fr, NULL),
					 rl == k[i].good ? MQTT_OK : MQTT_E_MALFORMED);
		}
		/* A huge length on a fixed-size type is malformed, too. */
		uint8_t big[] = {k[i].b0, 0xff, 0xff, 0xff, 0x7f};
		struct mqtt_frame fr;
		assert_int_equal(mqtt_frame_parse(big, sizeof(big), 100, &fr, NULL),
				 MQTT_E_MALFORMED);
	}
}

static void test_frame_stream_of_packets(void **state)
{
	(void)state;
	static uint8_t stream[512];
	size_t len = 0;

	build_connect(&g_body, &k_full_connect);
	make_frame(&g_frame, 0x10, &g_body);
	memcpy(stream + len, g_frame.b, g_frame.len);
	len += g_frame.len;
	build_publish(&g_body, "t/1", 3, 7, true, "21.5");
	make_frame(&g_frame, 0x32, &g_body);
	memcpy(stream + len, g_frame.b, g_frame.len);
	len += g_frame.len;
	const uint8_t tail[] = {0x62, 0x02, 0x00, 0x07, 0xc0, 0x00, 0xe0, 0x00};
	memcpy(stream + len, tail, sizeof(tail));
	len += sizeof(tail);

	const enum mqtt_type want[] = {MQTT_CONNECT, MQTT_PUBLISH, MQTT_PUBREL, MQTT_PINGREQ,
				       MQTT_DISCONNECT};
	size_t off = 0, n = 0;
	while (off < len) {
		struct mqtt_frame fr;
		assert_int_equal(mqtt_frame_parse(stream + off, len - off, 1024, &fr, NULL),
				 MQTT_OK);
		assert_true(n < ARRAY_LEN(want));
		assert_int_equal(fr.type, want[n]);
		assert_int_equal(stream_step(stream + off, len - off, 1024), MQTT_OK);
		off += fr.header_len + fr.remaining_length;
		n++;
	}
	assert_int_equal(off, len);
	assert_int_equal(n, ARRAY_LEN(want));
}

/* ---------------------------------------------------------------------------
 * CONNECT (3.1)
 */

static void test_connect_minimal_311(void **state)
{
	(void)state;
	const struct connect_args a = {"MQTT", 4, 0x02, 30, "dev0001", NULL, NULL, NULL, NULL};
	struct mqtt_connect c;
	assert_int_equal(decode_connect_args(&a, &c), MQTT_OK);
	assert_int_equal(c.refuse, MQTT_CONNACK_ACCEPTED);
	assert_true(str_is(c.protocol_name, "MQTT"));
	assert_int_equal(c.protocol_level, 4);
	assert_true(c.clean_session);
	assert_int_equal(c.keepalive, 30);
	assert_true(str_is(c.client_id, "dev0001"));
	assert_false(c.has_will);
	assert_false(c.has_username);
	assert_false(c.has_password);
}

static void test_connect_full(void **state)
{
	(void)state;
	struct mqtt_connect c;
	assert_int_equal(decode_connect_args(&k_full_connect, &c), MQTT_OK);
	assert_int_equal(c.refuse, MQTT_CONNACK_ACCEPTED);
	assert_int_equal(c.keepalive, 60);
	assert_true(str_is(c.client_id, "d:org:type:dev0001"));
	assert_true(c.has_will);
	assert_int_equal(c.will_qos, 1);
	assert_true(c.will_retain);
	assert_true(str_is(c.will_topic, "iot-2/evt/lwt/fmt/json"));
	assert_true(str_is(c.will_message, "gone"));
	assert_true(c.has_username);
	assert_true(str_is(c.username, "use-token-auth"));
	assert_true(c.has_password);
	assert_true(str_is(c.password, "s3cret"));
	/* Views point into the caller's body. */
	assert_true((const uint8_t *)c.client_id.ptr > g_body.b);
	assert_true((const uint8_t *)c.password.ptr + c.password.len == g_body.b + g_body.len);
}

static void test_connect_binary_password_and_will(void **state)
{
	(void)state;
	/* Will message and password are binary (3.1.3.3, 3.1.3.5): NUL and
	 * invalid UTF-8 are fine there. */
	static const uint8_t bin[] = {0x00, 0xff, 0xed, 0xa0, 0x80};
	g_body.len = 0;
	put_str(&g_body, "MQTT");
	put_u8(&g_body, 4);
	put_u8(&g_body, 0xc0 | 0x04 | 0x02);
	put_u16(&g_body, 0);
	put_str(&g_body, "x");
	put_str(&g_body, "w/t");
	put_lstr(&g_body, bin, sizeof(bin));
	put_str(&g_body, "u");
	put_lstr(&g_body, bin, sizeof(bin));
	struct mqtt_connect c;
	assert_int_equal(mqtt_decode_connect(0, g_body.b, g_body.len, &c, NULL), MQTT_OK);
	assert_int_equal(c.refuse, MQTT_CONNACK_ACCEPTED);
	assert_int_equal(c.will_message.len, sizeof(bin));
	assert_memory_equal(c.password.ptr, bin, sizeof(bin));
	assert_int_equal(c.keepalive, 0);
}

static void test_connect_mqisdp_31(void **state)
{
	(void)state;
	const struct connect_args a = {"MQIsdp", 3, 0xc2, 10, "esp8266-1", NULL, NULL, "u", "p"};
	struct mqtt_connect c;
	assert_int_equal(decode_connect_args(&a, &c), MQTT_OK);
	assert_int_equal(c.refuse, MQTT_CONNACK_ACCEPTED);
	assert_true(str_is(c.protocol_name, "MQIsdp"));
	assert_int_equal(c.protocol_level, 3);
	assert_true(str_is(c.client_id, "esp8266-1"));
	assert_true(str_is(c.username, "u"));
	assert_true(str_is(c.password, "p"));
}

static void test_connect_mqisdp_empty_client_id(void **state)
{
	(void)state;
	/* MQTT 3.1 requires 1..23 characters: empty is refused even with
	 * clean session. */
	for (uint8_t clean = 0; clean <= 1; clean++) {
		const struct connect_args a = {"MQIsdp", 3, (uint8_t)(clean << 1), 10, "",
					       NULL,     NULL, NULL, NULL};
		struct mqtt_connect c;
		assert_int_equal(decode_connect_args(&a, &c), MQTT_OK);
		assert_int_equal(c.refuse, MQTT_CONNACK_IDENTIFIER_REJECTED);
	}
}

static void test_connect_mqtt5_refused(void **state)
{
	(void)state;
	/* A real MQTT 5 CONNECT: properties after keepalive, which must not be
	 * parsed as a 3.1.1 client id. */
	static const uint8_t body[] = {
		0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3c,
		0x05, 0x11, 0x00, 0x00, 0x0e, 0x10, /* properties: session expiry */
		0x00, 0x03, 'a', 'b', 'c',
	};
	struct mqtt_connect c;
	const char *why = NULL;
	assert_int_equal(mqtt_decode_connect(0, body, sizeof(body), &c, &why), MQTT_OK);
	assert_int_equal(c.refuse, MQTT_CONNACK_BAD_PROTOCOL_VERSION);
	assert_int_equal(c.protocol_level, 5);
	assert_true(str_is(c.protocol_name, "MQTT"));
	assert_non_null(why);
	/* Even just name + level is enough to refuse cleanly. */
	assert_int_equal(mqtt_decode_connect(0, body, 7, &c, NULL), MQTT_OK);
	assert_int_equal(c.refuse, MQTT_CONNACK_BAD_PROTOCOL_VERSION);
}

static void test_connect_other_levels_refused(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		uint8_t level;
	} k[] = {
		{"MQTT", 0}, {"MQTT", 3}, {"MQTT", 6}, {"MQTT", 0x84}, {"MQTT", 255},
		{"MQIsdp", 4}, {"MQIsdp", 5}, {"MQIsdp", 1},
	};
	for (size_t i = 0; i < ARRAY_LEN(k); i++) {
		const struct connect_args a = {k[i].name, k[i].level, 0x02, 10, "x",
					       NULL,      NULL,        NULL, NULL};
		struct mqtt_connect c;
		assert_int_equal(decode_connect_args(&a, &c), MQTT_OK);
		assert_int_equal(c.refuse, MQTT_CONNACK_BAD_PROTOCOL_VERSION);
		assert_int_equal(c.protocol_level, k[i].level);
	}
}

static void test_connect_bad_protocol_name(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		size_t len;
	} k[] = {
		{"", 0}, {"MQTX", 4}, {"mqtt", 4}, {"MQT", 3}, {"MQTTT", 5},
		{"MQTT\0", 5}, {"MQIsdP", 6}, {"\xed\xa0\x80", 3}, {"MQIsd", 5},
	};
	for (size_t i = 0; i < ARRAY_LEN(k); i++) {
		g_body.len = 0;
		put_lstr(&g_body, k[i].name, k[i].len);
		put_u8(&g_body, 4);
		put_u8(&g_body, 0x02);
		put_u16(&g_body, 10);
		put_str(&g_body, "x");
		struct mqtt_connect c;
		const char *why = NULL;
		assert_int_equal(mqtt_decode_connect(0, g_body.b, g_body.len, &c, &why),
				 MQTT_E_MALFORMED);
		assert_non_null(why);
	}
}

static void test_connect_reserved_flag(void **state)
{
	(void)state;
	struct mqtt_connect c;
	const struct connect_args v4 = {"MQTT", 4, 0x03, 10, "x", NULL, NULL, NULL, NULL};
	assert_int_equal(decode_connect_args(&v4, &c), MQTT_E_MALFORMED);
	/* MQTT 3.1 only called the bit "not used": tolerated there. */
	const struct connect_args v3 = {"MQIsdp", 3, 0x03, 10, "x", NULL, NULL, NULL, NULL};
	assert_int_equal(decode_connect_args(&v3, &c), MQTT_OK);
	assert_int_equal(c.refuse, MQTT_CONNACK_ACCEPTED);
}

static void test_connect_will_flag_combos(void **state)
{
	(void)state;
	static const struct {
		uint8_t flags; /* besides clean session */
		bool fields;   /* will topic/message present */
		enum mqtt_result want;
	} k[] = {
		{0x00, false, MQTT_OK},
		{0x04, true, MQTT_OK},          /* will QoS 0 */
		{0x0c, true, MQTT_OK},          /* will QoS 1 */
		{0x14, true, MQTT_OK},          /* will QoS 2 */
		{0x1c, true, MQTT_E_MALFORMED}, /* will QoS 3 [MQTT-3.1.2-14] */
		{0x24, true, MQTT_OK},          /* will retain */
		{0x08, false, MQTT_E_MALFORMED}, /* QoS without will [MQTT-3.1.2-13] */
		{0x10, false, MQTT_E_MALFORMED},
		{0x18, false, MQTT_E_MALFORMED},
		{0x20, false, MQTT_E_MALFORMED}, /* retain without will [MQTT-3.1.2-15] */
		{0x04, false, MQTT_E_MALFORMED}, /* will flag but fields missing */
		{0x00, true, MQTT_E_MALFORMED},  /* fields without the flag: trailing */
	};
	for (size_t i = 0; i < ARRAY_LEN(k); i++) {
		const struct connect_args a = {
			"MQTT", 4, (uint8_t)(k[i].flags | 0x02), 10, "x",
			k[i].fields ? "w/t" : NULL, k[i].fields ? "bye" : NULL, NULL, NULL,
		};
		struct mqtt_connect c;
		assert_int_equal(decode_connect_args(&a, &c), k[i].want);
		if (k[i].want == MQTT_OK && k[i].fields) {
			assert_true(c.has_will);
			assert_int_equal(c.will_qos, (k[i].flags >> 3) & 3);
			assert_int_equal(c.will_retain, (k[i].flags & 0x20) != 0);
			assert_true(str_is(c.will_topic, "w/t"));
		}
	}
}

static void test_connect_will_topic_invalid(void **state)
{
	(void)state;
	static const char *const k[] = {"", "a/+", "#", "a/#", "\xed\xa0\x80", "\xc0\xaf"};
	for (size_t i = 0; i < ARRAY_LEN(k); i++) {
		const struct connect_args a = {"MQTT", 4, 0x06, 10, "x", k[i], "m", NULL, NULL};
		struct mqtt_connect c;
		assert_int_equal(decode_connect_args(&a, &c), MQTT_E_MALFORMED);
	}
}

static void test_connect_password_without_username(void **state)
{
	(void)state;
	struct mqtt_connect c;
	const struct connect_args a = {"MQTT", 4, 0x42, 10, "x", NULL, NULL, NULL, "pw"};
	assert_int_equal(decode_connect_args(&a, &c), MQTT_E_MALFORMED);
	const struct connect_args b = {"MQIsdp", 3, 0x42, 10, "x", NULL, NULL, NULL, "pw"};
	assert_int_equal(decode_connect_args(&b, &c), MQTT_E_MALFORMED);
	/* Username without password is fine (3.1.2.9). */
	const struct connect_args d = {"MQTT", 4, 0x82, 10, "x", NULL, NULL, "u", NULL};
	assert_int_equal(decode_connect_args(&d, &c), MQTT_OK);
	assert_true(c.has_username);
	assert_false(c.has_password);
	/* Empty username and password are present-but-empty, not absent. */
	const struct connect_args e = {"MQTT", 4, 0xc2, 10, "x", NULL, NULL, "", ""};
	assert_int_equal(decode_connect_args(&e, &c), MQTT_OK);
	assert_true(c.has_username && c.has_password);
	assert_int_equal(c.username.len, 0);
	assert_int_equal(c.password.len, 0);
}

static void test_connect_flag_fields_missing(void **state)
{
	(void)state;
	struct mqtt_connect c;
	/* Username flag without the field; password flag without the field. */
	const struct connect_args a = {"MQTT", 4, 0x82, 10, "x", NULL, NULL, NULL, NULL};
	assert_int_equal(decode_connect_args(&a, &c), MQTT_E_MALFORMED);
	const struct connect_args b = {"MQTT", 4, 0xc2, 10, "x", NULL, NULL, "u", NULL};
	assert_int_equal(decode_connect_args(&b, &c), MQTT_E_MALFORMED);
}

static void test_connect_empty_client_id(void **state)
{
	(void)state;
	struct mqtt_connect c;
	/* 3.1.3.1: allowed with clean session (the server assigns one) ... */
	const struct connect_args a = {"MQTT", 4, 0x02, 10, "", NULL, NULL, NULL, NULL};
	assert_int_equal(decode_connect_args(&a, &c), MQTT_OK);
	assert_int_equal(c.refuse, MQTT_CONNACK_ACCEPTED);
	assert_int_equal(c.client_id.len, 0);
	/* ... refused with CONNACK 0x02 without [MQTT-3.1.3-8]. */
	const struct connect_args b = {"MQTT", 4, 0x00, 10, "", NULL, NULL, NULL, NULL};
	assert_int_equal(decode_connect_args(&b, &c), MQTT_OK);
	assert_int_equal(c.refuse, MQTT_CONNACK_IDENTIFIER_REJECTED);
	/* A malformed packet stays malformed, whatever its client id. */
	const struct connect_args d = {"MQTT", 4, 0x01, 10, "", NULL, NULL, NULL, NULL};
	assert_int_equal(decode_connect_args(&d, &c), MQTT_E_MALFORMED);
}

static void test_connect_long_client_id(void **state)
{
	(void)state;
	static char id[65536];
	for (size_t n = 24; n <= 65535; n = n * 4 + 3) {
		memset(id, 'a', n);
		id[n] = '\0';
		const struct connect_args a = {"MQTT", 4, 0x00, 10, id, NULL, NULL, NULL, NULL};
		struct mqtt_connect c;
		assert_int_equal(decode_connect_args(&a, &c), MQTT_OK);
		assert_int_equal(c.refuse, MQTT_CONNACK_ACCEPTED);
		assert_int_equal(c.client_id.len, n);
	}
}

static const struct {
	const char *s;
	size_t len;
} k_bad_utf8[] = {
	{"\x00", 1},             /* U+0000 [MQTT-1.5.3-2] */
	{"ab\x00" "cd", 5},      /* embedded U+0000 */
	{"\xed\xa0\x80", 3},     /* surrogate U+D800 [MQTT-1.5.3-1] */
	{"\xed\xbf\xbf", 3},     /* surrogate U+DFFF */
	{"\xc0\x80", 2},         /* overlong U+0000 */
	{"\xc1\xbf", 2},         /* overlong */
	{"\xe0\x80\xaf", 3},     /* overlong '/' */
	{"\xf0\x80\x80\xaf", 4}, /* overlong '/' */
	{"\xf4\x90\x80\x80", 4}, /* above U+10FFFF */
	{"\xf5\x80\x80\x80", 4},
	{"\xff", 1},
	{"\x80", 1},             /* lone continuation */
	{"a\xe2\x82", 3},        /* truncated sequence */
	{"\xe2\x28\xa1", 3},     /* bad second byte */
	{"\xe2\x82\x28", 3},     /* bad third byte */
	{"\xf0\x9f\x98\x41", 4}, /* bad fourth byte */
	{"\xf0\x9f\x98", 3},     /* truncated 4-byte */
};

static void test_connect_client_id_bad_utf8(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(k_bad_utf8); i++) {
		g_body.len = 0;
		put_str(&g_body, "MQTT");
		put_u8(&g_body, 4);
		put_u8(&g_body, 0x02);
		put_u16(&g_body, 10);
		put_lstr(&g_body, k_bad_utf8[i].s, k_bad_utf8[i].len);
		struct mqtt_connect c;
		assert_int_equal(mqtt_decode_connect(0, g_body.b, g_body.len, &c, NULL),
				 MQTT_E_MALFORMED);
	}
}

static void test_connect_username_bad_utf8(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(k_bad_utf8); i++) {
		g_body.len = 0;
		put_str(&g_body, "MQTT");
		put_u8(&g_body, 4);
		put_u8(&g_body, 0x82);
		put_u16(&g_body, 10);
		put_str(&g_body, "x");
		put_lstr(&g_body, k_bad_utf8[i].s, k_bad_utf8[i].len);
		struct mqtt_connect c;
		assert_int_equal(mqtt_decode_connect(0, g_body.b, g_body.len, &c, NULL),
				 MQTT_E_MALFORMED);
	}
}

static void test_connect_trailing_bytes(void **state)
{
	(void)state;
	const struct connect_args a = {"MQTT", 4, 0x02, 10, "x", NULL, NULL, NULL, NULL};
	build_connect(&g_body, &a);
	put_u8(&g_body, 0);
	struct mqtt_connect c;
	assert_int_equal(mqtt_decode_connect(0, g_body.b, g_body.len, &c, NULL),
			 MQTT_E_MALFORMED);
}

static void test_connect_nonzero_header_flags(void **state)
{
	(void)state;
	build_connect(&g_body, &k_full_connect);
	struct mqtt_connect c;
	for (uint8_t fl = 1; fl < 16; fl++)
		assert_int_equal(mqtt_decode_connect(fl, g_body.b, g_body.len, &c, NULL),
				 MQTT_E_MALFORMED);
}

/* Every prefix of a valid CONNECT frame: never OK, never a crash; the body
 * alone cut anywhere is malformed (its length fields overrun it). */
static void test_connect_truncated_every_offset(void **state)
{
	(void)state;
	build_connect(&g_body, &k_full_connect);
	make_frame(&g_frame, 0x10, &g_body);
	assert_int_equal(stream_step(g_frame.b, g_frame.len, 1024), MQTT_OK);
	for (size_t k = 0; k < g_frame.len; k++) {
		enum mqtt_result r = stream_step(g_frame.b, k, 1024);
		assert_true(r == MQTT_INCOMPLETE || r == MQTT_E_MALFORMED);
	}
	for (size_t k = 0; k < g_body.len; k++) {
		struct mqtt_connect c;
		assert_int_equal(mqtt_decode_connect(0, g_body.b, k, &c, NULL), MQTT_E_MALFORMED);
	}
	/* Same for the frame in a buffer that ends exactly at the prefix (so
	 * ASan catches any read past it). */
	static uint8_t copy[256];
	for (size_t k = 0; k < g_body.len; k++) {
		memcpy(copy + sizeof(copy) - k, g_body.b, k);
		struct mqtt_connect c;
		assert_int_equal(mqtt_decode_connect(0, copy + sizeof(copy) - k, k, &c, NULL),
				 MQTT_E_MALFORMED);
	}
}

/* ---------------------------------------------------------------------------
 * PUBLISH (3.3)
 */

static void test_publish_qos0(void **state)
{
	(void)state;
	build_publish(&g_body, "iot-2/evt/status/fmt/json", 25, 0, false, "{\"d\":{\"temp\":21}}");
	struct mqtt_publish p;
	const char *why = NULL;
	assert_int_equal(mqtt_decode_publish(0x00, g_body.b, g_body.len, &p, &why), MQTT_OK);
	assert_true(str_is(p.topic, "iot-2/evt/status/fmt/json"));
	assert_int_equal(p.qos, 0);
	assert_false(p.dup);
	assert_false(p.retain);
	assert_int_equal(p.packet_id, 0);
	assert_int_equal(p.payload_len, 17);
	assert_memory_equal(p.payload, "{\"d\":{\"temp\":21}}", 17);
}

static void test_publish_qos_flags(void **state)
{
	(void)state;
	static const struct {
		uint8_t flags;
		uint8_t qos;
		bool dup, retain;
	} k[] = {
		{0x01, 0, false, true}, {0x02, 1, false, false}, {0x03, 1, false, true},
		{0x04, 2, false, false}, {0x0a, 1, true, false}, {0x0d, 2, true, true},
	};
	for (size_t i = 0; i < ARRAY_LEN(k); i++) {
		build_publish(&g_body, "a/b", 3, 0x1234, k[i].qos > 0, "x");
		struct mqtt_publish p;
		assert_int_equal(mqtt_decode_publish(k[i].flags, g_body.b, g_body.len, &p, NULL),
				 MQTT_OK);
		assert_int_equal(p.qos, k[i].qos);
		assert_int_equal(p.dup, k[i].dup);
		assert_int_equal(p.retain, k[i].retain);
		assert_int_equal(p.packet_id, k[i].qos ? 0x1234 : 0);
		assert_int_equal(p.payload_len, 1);
		assert_int_equal(p.payload[0], 'x');
	}
}

static void test_publish_empty_payload(void **state)
{
	(void)state;
	build_publish(&g_body, "t", 1, 1, true, "");
	struct mqtt_publish p;
	assert_int_equal(mqtt_decode_publish(0x02, g_body.b, g_body.len, &p, NULL), MQTT_OK);
	assert_int_equal(p.payload_len, 0);
	assert_int_equal(p.packet_id, 1);
}

static void test_publish_qos3(void **state)
{
	(void)state;
	build_publish(&g_body, "t", 1, 1, true, "x");
	struct mqtt_publish p;
	const char *why = NULL;
	assert_int_equal(mqtt_decode_publish(0x06, g_body.b, g_body.len, &p, &why),
			 MQTT_E_MALFORMED);
	assert_non_null(why);
	assert_int_equal(mqtt_decode_publish(0x0f, g_body.b, g_body.len, &p, NULL),
			 MQTT_E_MALFORMED);
	const uint8_t hdr[] = {0x36, 0x06};
	struct mqtt_frame fr;
	assert_int_equal(mqtt_frame_parse(hdr, sizeof(hdr), 100, &fr, NULL), MQTT_E_MALFORMED);
	/* Flags outside the low nibble are not flags. */
	assert_int_equal(mqtt_decode_publish(0x10, g_body.b, g_body.len, &p, NULL),
			 MQTT_E_MALFORMED);
}

static void test_publish_dup_qos0(void **state)
{
	(void)state;
	build_publish(&g_body, "t", 1, 0, false, "x");
	struct mqtt_publish p;
	assert_int_equal(mqtt_decode_publish(0x08, g_body.b, g_body.len, &p, NULL),
			 MQTT_E_MALFORMED);
}

static void test_publish_packet_id_zero(void **state)
{
	(void)state;
	build_publish(&g_body, "t", 1, 0, true, "x");
	struct mqtt_publish p;
	assert_int_equal(mqtt_decode_publish(0x02, g_body.b, g_body.len, &p, NULL),
			 MQTT_E_MALFORMED);
	assert_int_equal(mqtt_decode_publish(0x04, g_body.b, g_body.len, &p, NULL),
			 MQTT_E_MALFORMED);
	/* QoS 0: those two bytes are payload, not an id. */
	assert_int_equal(mqtt_decode_publish(0x00, g_body.b, g_body.len, &p, NULL), MQTT_OK);
	assert_int_equal(p.payload_len, 3);
}

static void test_publish_wildcard_topic(void **state)
{
	(void)state;
	static const char *const k[] = {"a/+", "+", "#", "a/#", "a/+/b", "a+", "a#b"};
	for (size_t i = 0; i < ARRAY_LEN(k); i++) {
		build_publish(&g_body, k[i], strlen(k[i]), 1, true, "x");
		struct mqtt_publish p;
		assert_int_equal(mqtt_decode_publish(0x02, g_body.b, g_body.len, &p, NULL),
				 MQTT_E_MALFORMED);
	}
}

static void test_publish_empty_topic(void **state)
{
	(void)state;
	build_publish(&g_body, "", 0, 1, true, "x");
	struct mqtt_publish p;
	assert_int_equal(mqtt_decode_publish(0x02, g_body.b, g_body.len, &p, NULL),
			 MQTT_E_MALFORMED);
}

static void test_publish_bad_utf8_topic(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(k_bad_utf8); i++) {
		build_publish(&g_body, k_bad_utf8[i].s, k_bad_utf8[i].len, 0, false, "x");
		struct mqtt_publish p;
		assert_int_equal(mqtt_decode_publish(0x00, g_body.b, g_body.len, &p, NULL),
				 MQTT_E_MALFORMED);
	}
	/* Valid non-ASCII topics pass: "$SYS", "temp/°C/🌡". */
	static const char utf8_topic[] = "temp/\xc2\xb0" "C/\xf0\x9f\x8c\xa1";
	build_publish(&g_body, utf8_topic, strlen(utf8_topic), 0, false, "x");
	struct mqtt_publish p;
	assert_int_equal(mqtt_decode_publish(0x00, g_body.b, g_body.len, &p, NULL), MQTT_OK);
}

static void test_publish_topic_overruns_body(void **state)
{
	(void)state;
	static const uint8_t k[][4] = {
		{0x00},                   /* 1 byte: half a length */
		{0x00, 0x05, 'a', 'b'},   /* length 5, 2 bytes */
		{0xff, 0xff, 'a', 'b'},   /* length 65535 */
	};
	static const size_t lens[] = {1, 4, 4};
	for (size_t i = 0; i < ARRAY_LEN(lens); i++) {
		struct mqtt_publish p;
		assert_int_equal(mqtt_decode_publish(0x00, k[i], lens[i], &p, NULL),
				 MQTT_E_MALFORMED);
	}
	struct mqtt_publish p;
	assert_int_equal(mqtt_decode_publish(0x00, k[0], 0, &p, NULL), MQTT_E_MALFORMED);
}

static void test_publish_truncated_every_offset(void **state)
{
	(void)state;
	build_publish(&g_body, "iot-2/evt/status/fmt/json", 25, 42, true, "{\"temp\":21.5}");
	make_frame(&g_frame, 0x32, &g_body);
	assert_int_equal(stream_step(g_frame.b, g_frame.len, 1024), MQTT_OK);
	for (size_t k = 0; k < g_frame.len; k++) {
		enum mqtt_result r = stream_step(g_frame.b, k, 1024);
		assert_true(r == MQTT_INCOMPLETE || r == MQTT_E_MALFORMED);
	}
	/* The bare body cut inside topic or packet id is malformed; cut in
	 * the payload the decoder cannot tell, and the shorter payload is all
	 * it reports. */
	const size_t fixed = 2 + 25 + 2;
	static uint8_t copy[256];
	for (size_t k = 0; k < g_body.len; k++) {
		memcpy(copy + sizeof(copy) - k, g_body.b, k);
		struct mqtt_publish p;
		enum mqtt_result r =
			mqtt_decode_publish(0x02, copy + sizeof(copy) - k, k, &p, NULL);
		if (k < fixed) {
			assert_int_equal(r, MQTT_E_MALFORMED);
		} else {
			assert_int_equal(r, MQTT_OK);
			assert_int_equal(p.payload_len, k - fixed);
		}
	}
}

static void test_publish_large_frame_varint(void **state)
{
	(void)state;
	/* A payload large enough for a 3-byte remaining length. */
	static char payload[20000];
	memset(payload, '7', sizeof(payload) - 1);
	payload[sizeof(payload) - 1] = '\0';
	build_publish(&g_body, "a/b", 3, 9, true, payload);
	make_frame(&g_frame, 0x33, &g_body);
	struct mqtt_frame fr;
	assert_int_equal(mqtt_frame_parse(g_frame.b, g_frame.len, 65536, &fr, NULL), MQTT_OK);
	assert_int_equal(fr.header_len, 4);
	assert_int_equal(fr.remaining_length, g_body.len);
	struct mqtt_publish p;
	assert_int_equal(mqtt_decode_publish(fr.flags, g_frame.b + fr.header_len,
					     fr.remaining_length, &p, NULL),
			 MQTT_OK);
	assert_true(p.retain);
	assert_int_equal(p.payload_len, sizeof(payload) - 1);
	assert_int_equal(mqtt_frame_parse(g_frame.b, g_frame.len, 16384, &fr, NULL),
			 MQTT_E_TOO_LARGE);
}

/* ---------------------------------------------------------------------------
 * Acknowledgements, SUBSCRIBE, UNSUBSCRIBE
 */

static void test_decode_ack(void **state)
{
	(void)state;
	uint16_t id = 0;
	const char *why = NULL;
	const uint8_t ok[] = {0x12, 0x34};
	assert_int_equal(mqtt_decode_ack(ok, 2, &id, &why), MQTT_OK);
	assert_int_equal(id, 0x1234);
	const uint8_t zero[] = {0, 0};
	assert_int_equal(mqtt_decode_ack(zero, 2, &id, &why), MQTT_E_MALFORMED);
	assert_non_null(why);
	const uint8_t three[] = {0, 1, 0};
	assert_int_equal(mqtt_decode_ack(three, 3, &id, NULL), MQTT_E_MALFORMED);
	assert_int_equal(mqtt_decode_ack(three, 1, &id, NULL), MQTT_E_MALFORMED);
	assert_int_equal(mqtt_decode_ack(three, 0, &id, NULL), MQTT_E_MALFORMED);
}

static void build_subscribe(struct pkt *p, uint16_t id, const char *const *filters,
			    const uint8_t *qos, size_t n)
{
	p->len = 0;
	put_u16(p, id);
	for (size_t i = 0; i < n; i++) {
		put_str(p, filters[i]);
		if (qos)
			put_u8(p, qos[i]);
	}
}

static void test_subscribe_ok(void **state)
{
	(void)state;
	static const char *const f[] = {"a/b", "iot-2/cmd/+/fmt/+", "#", "$SYS/#", "+", "/"};
	static const uint8_t q[] = {0, 1, 2, 0, 1, 2};
	build_subscribe(&g_body, 77, f, q, ARRAY_LEN(f));
	uint16_t id = 0;
	size_t n = 0;
	assert_int_equal(mqtt_decode_subscribe(g_body.b, g_body.len, &id, &n, NULL), MQTT_OK);
	assert_int_equal(id, 77);
	assert_int_equal(n, ARRAY_LEN(f));
	for (size_t i = 0; i < n; i++) {
		struct mqtt_str fs;
		uint8_t qos = 9;
		assert_true(mqtt_filter_at(g_body.b, g_body.len, true, i, &fs, &qos));
		assert_int_equal(fs.len, strlen(f[i]));
		assert_memory_equal(fs.ptr, f[i], fs.len);
		assert_int_equal(qos, q[i]);
	}
	struct mqtt_str none;
	uint8_t qn;
	assert_false(mqtt_filter_at(g_body.b, g_body.len, true, n, &none, &qn));
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		struct mqtt_str fs;
		uint8_t qos = 9;
		assert_true(mqtt_filter_next(g_body.b, g_body.len, true, &off, &fs, &qos));
		assert_int_equal(fs.len, strlen(f[i]));
		assert_memory_equal(fs.ptr, f[i], fs.len);
		assert_int_equal(qos, q[i]);
	}
	assert_false(mqtt_filter_next(g_body.b, g_body.len, true, &off, &none, &qn));
	make_frame(&g_frame, 0x82, &g_body);
	assert_int_equal(stream_step(g_frame.b, g_frame.len, 1024), MQTT_OK);
}

static void test_subscribe_zero_filters(void **state)
{
	(void)state;
	const uint8_t body[] = {0x00, 0x01};
	uint16_t id;
	size_t n;
	const char *why = NULL;
	assert_int_equal(mqtt_decode_subscribe(body, sizeof(body), &id, &n, &why),
			 MQTT_E_MALFORMED);
	assert_non_null(why);
	assert_int_equal(mqtt_decode_unsubscribe(body, sizeof(body), &id, &n, NULL),
			 MQTT_E_MALFORMED);
	assert_int_equal(mqtt_decode_subscribe(body, 1, &id, &n, NULL), MQTT_E_MALFORMED);
	assert_int_equal(mqtt_decode_subscribe(body, 0, &id, &n, NULL), MQTT_E_MALFORMED);
}

static void test_subscribe_bad_qos_byte(void **state)
{
	(void)state;
	static const uint8_t bad[] = {3, 4, 0x80, 0x81, 0xfc, 0xff, 0x40};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		static const char *const f[] = {"a/b", "c"};
		const uint8_t q[] = {1, bad[i]};
		build_subscribe(&g_body, 5, f, q, 2);
		uint16_t id;
		size_t n;
		assert_int_equal(mqtt_decode_subscribe(g_body.b, g_body.len, &id, &n, NULL),
				 MQTT_E_MALFORMED);
	}
}

static void test_subscribe_missing_qos_byte(void **state)
{
	(void)state;
	static const char *const f[] = {"a/b"};
	build_subscribe(&g_body, 5, f, NULL, 1);
	uint16_t id;
	size_t n;
	assert_int_equal(mqtt_decode_subscribe(g_body.b, g_body.len, &id, &n, NULL),
			 MQTT_E_MALFORMED);
	/* ... but that is exactly a valid UNSUBSCRIBE body. */
	assert_int_equal(mqtt_decode_unsubscribe(g_body.b, g_body.len, &id, &n, NULL), MQTT_OK);
	assert_int_equal(n, 1);
}

static const char *const k_bad_filters[] = {
	"", "a/#/b", "a+", "+a", "a/b+", "#/a", "a#", "a/#b", "##", "++", "a/+b/c",
};

static void test_subscribe_invalid_filter(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(k_bad_filters); i++) {
		const char *const f[] = {"ok/+", k_bad_filters[i]};
		const uint8_t q[] = {0, 0};
		build_subscribe(&g_body, 5, f, q, 2);
		uint16_t id;
		size_t n;
		assert_int_equal(mqtt_decode_subscribe(g_body.b, g_body.len, &id, &n, NULL),
				 MQTT_E_MALFORMED);
		build_subscribe(&g_body, 5, f, NULL, 2);
		assert_int_equal(mqtt_decode_unsubscribe(g_body.b, g_body.len, &id, &n, NULL),
				 MQTT_E_MALFORMED);
	}
	for (size_t i = 0; i < ARRAY_LEN(k_bad_utf8); i++) {
		g_body.len = 0;
		put_u16(&g_body, 5);
		put_lstr(&g_body, k_bad_utf8[i].s, k_bad_utf8[i].len);
		put_u8(&g_body, 0);
		uint16_t id;
		size_t n;
		assert_int_equal(mqtt_decode_subscribe(g_body.b, g_body.len, &id, &n, NULL),
				 MQTT_E_MALFORMED);
	}
}

static void test_subscribe_packet_id_zero_and_truncation(void **state)
{
	(void)state;
	static const char *const f[] = {"a/b", "c/#"};
	static const uint8_t q[] = {1, 2};
	build_subscribe(&g_body, 0, f, q, 2);
	uint16_t id;
	size_t n;
	assert_int_equal(mqtt_decode_subscribe(g_body.b, g_body.len, &id, &n, NULL),
			 MQTT_E_MALFORMED);
	build_subscribe(&g_body, 3, f, q, 2);
	/* Cut anywhere except right after a whole (filter, QoS) pair: malformed.
	 * Whole pairs: after 2+5+1 = 8 bytes and at the end. */
	static uint8_t copy[64];
	for (size_t k = 0; k < g_body.len; k++) {
		memcpy(copy + sizeof(copy) - k, g_body.b, k);
		enum mqtt_result r =
			mqtt_decode_subscribe(copy + sizeof(copy) - k, k, &id, &n, NULL);
		assert_int_equal(r, k == 8 ? MQTT_OK : MQTT_E_MALFORMED);
	}
}

static void test_unsubscribe(void **state)
{
	(void)state;
	static const char *const f[] = {"a/b", "x/+/y", "#"};
	build_subscribe(&g_body, 0xffff, f, NULL, 3);
	uint16_t id = 0;
	size_t n = 0;
	assert_int_equal(mqtt_decode_unsubscribe(g_body.b, g_body.len, &id, &n, NULL), MQTT_OK);
	assert_int_equal(id, 0xffff);
	assert_int_equal(n, 3);
	struct mqtt_str fs;
	uint8_t qos = 9;
	assert_true(mqtt_filter_at(g_body.b, g_body.len, false, 2, &fs, &qos));
	assert_int_equal(fs.len, 1);
	assert_int_equal(fs.ptr[0], '#');
	assert_int_equal(qos, 0);
	assert_false(mqtt_filter_at(g_body.b, g_body.len, false, 3, &fs, &qos));
	make_frame(&g_frame, 0xa2, &g_body);
	assert_int_equal(stream_step(g_frame.b, g_frame.len, 1024), MQTT_OK);
	build_subscribe(&g_body, 0, f, NULL, 3);
	assert_int_equal(mqtt_decode_unsubscribe(g_body.b, g_body.len, &id, &n, NULL),
			 MQTT_E_MALFORMED);
}

/* ---------------------------------------------------------------------------
 * Encoders
 */

static void test_encode_connack(void **state)
{
	(void)state;
	uint8_t out[8];
	assert_int_equal(mqtt_encode_connack(out, sizeof(out), false, 0), 4);
	assert_memory_equal(out, ((const uint8_t[]){0x20, 0x02, 0x00, 0x00}), 4);
	assert_int_equal(mqtt_encode_connack(out, sizeof(out), true, 0), 4);
	assert_memory_equal(out, ((const uint8_t[]){0x20, 0x02, 0x01, 0x00}), 4);
	assert_int_equal(
		mqtt_encode_connack(out, sizeof(out), false, MQTT_CONNACK_BAD_PROTOCOL_VERSION), 4);
	assert_memory_equal(out, ((const uint8_t[]){0x20, 0x02, 0x00, 0x01}), 4);
	/* [MQTT-3.2.2-4]: session present is 0 whenever the code is nonzero. */
	assert_int_equal(
		mqtt_encode_connack(out, sizeof(out), true, MQTT_CONNACK_IDENTIFIER_REJECTED), 4);
	assert_memory_equal(out, ((const uint8_t[]){0x20, 0x02, 0x00, 0x02}), 4);
	assert_int_equal(mqtt_encode_connack(out, 3, false, 0), 0);
	assert_int_equal(mqtt_encode_connack(out, 0, false, 0), 0);
}

static void test_encode_ack_exact_bytes(void **state)
{
	(void)state;
	static const struct {
		enum mqtt_type type;
		uint8_t b0;
	} k[] = {
		{MQTT_PUBACK, 0x40}, {MQTT_PUBREC, 0x50},   {MQTT_PUBREL, 0x62},
		{MQTT_PUBCOMP, 0x70}, {MQTT_UNSUBACK, 0xb0},
	};
	for (size_t i = 0; i < ARRAY_LEN(k); i++) {
		uint8_t out[4] = {0};
		assert_int_equal(mqtt_encode_ack(out, sizeof(out), k[i].type, 0xbeef), 4);
		const uint8_t want[] = {k[i].b0, 0x02, 0xbe, 0xef};
		assert_memory_equal(out, want, 4);
		assert_int_equal(mqtt_encode_ack(out, 3, k[i].type, 1), 0);
		assert_int_equal(mqtt_encode_ack(out, sizeof(out), k[i].type, 0), 0);
	}
	uint8_t out[4];
	static const enum mqtt_type bad[] = {MQTT_CONNECT, MQTT_CONNACK, MQTT_PUBLISH,
					     MQTT_SUBSCRIBE, MQTT_SUBACK, MQTT_UNSUBSCRIBE,
					     MQTT_PINGREQ, MQTT_PINGRESP, MQTT_DISCONNECT};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_int_equal(mqtt_encode_ack(out, sizeof(out), bad[i], 1), 0);
}

/* The acks a server sends and a client echoes must pass our own parser. */
static void test_encode_ack_roundtrip(void **state)
{
	(void)state;
	static const enum mqtt_type k[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP};
	for (size_t i = 0; i < ARRAY_LEN(k); i++) {
		for (uint32_t id = 1; id <= 0xffff; id = id * 7 + 1) {
			uint8_t out[4];
			assert_int_equal(mqtt_encode_ack(out, sizeof(out), k[i], (uint16_t)id), 4);
			struct mqtt_frame fr;
			assert_int_equal(mqtt_frame_parse(out, 4, 100, &fr, NULL), MQTT_OK);
			assert_int_equal(fr.type, k[i]);
			uint16_t got = 0;
			assert_int_equal(mqtt_decode_ack(out + fr.header_len, fr.remaining_length,
							 &got, NULL),
					 MQTT_OK);
			assert_int_equal(got, id);
		}
	}
}

static void test_encode_pingresp(void **state)
{
	(void)state;
	uint8_t out[2] = {0xaa, 0xaa};
	assert_int_equal(mqtt_encode_pingresp(out, sizeof(out)), 2);
	assert_memory_equal(out, ((const uint8_t[]){0xd0, 0x00}), 2);
	assert_int_equal(mqtt_encode_pingresp(out, 1), 0);
}

static void test_encode_publish(void **state)
{
	(void)state;
	uint8_t out[64];
	static const uint8_t pl[] = "{\"r\":1}";
	size_t n = mqtt_encode_publish(out, sizeof out, "iot-2/cmd/x/fmt/json", 20, pl, 7, 1, true,
				       0x1234);
	static const uint8_t want[] = {0x3a, 31, 0, 20, 'i', 'o', 't', '-', '2', '/', 'c',
				       'm',  'd', '/', 'x', '/', 'f', 'm', 't', '/', 'j',
				       's',  'o', 'n', 0x12, 0x34, '{', '"', 'r', '"', ':', '1', '}'};
	assert_int_equal(n, sizeof want);
	assert_memory_equal(out, want, n);
	/* The decoder takes what the encoder makes. */
	struct mqtt_publish pub;
	assert_int_equal(mqtt_decode_publish(out[0] & 0x0f, out + 2, n - 2, &pub, NULL), MQTT_OK);
	assert_int_equal(pub.packet_id, 0x1234);
	assert_int_equal(pub.payload_len, 7);
	/* QoS 0: no packet id. */
	n = mqtt_encode_publish(out, sizeof out, "t", 1, pl, 7, 0, false, 0);
	assert_int_equal(n, 2 + 3 + 7);
	assert_int_equal(out[0], 0x30);
	/* Rules and room. */
	assert_int_equal(mqtt_encode_publish(out, sizeof out, "t", 1, pl, 7, 1, false, 0), 0);
	assert_int_equal(mqtt_encode_publish(out, sizeof out, "t", 1, pl, 7, 0, true, 0), 0);
	assert_int_equal(mqtt_encode_publish(out, sizeof out, "t", 1, pl, 7, 2, false, 1), 0);
	assert_int_equal(mqtt_encode_publish(out, sizeof out, "", 0, pl, 7, 0, false, 0), 0);
	assert_int_equal(mqtt_encode_publish(out, 11, "t", 1, pl, 7, 0, false, 0), 0);
	assert_int_equal(mqtt_encode_publish(out, 12, "t", 1, pl, 7, 0, false, 0), 12);
}

static void test_encode_suback(void **state)
{
	(void)state;
	uint8_t out[16];
	const uint8_t codes[] = {0x80, 0x00, 0x01, 0x02};
	assert_int_equal(mqtt_encode_suback(out, sizeof(out), 0x0102, codes, 4), 8);
	const uint8_t want[] = {0x90, 0x06, 0x01, 0x02, 0x80, 0x00, 0x01, 0x02};
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(mqtt_encode_suback(out, sizeof(out), 9, codes, 1), 5);
	assert_memory_equal(out, ((const uint8_t[]){0x90, 0x03, 0x00, 0x09, 0x80}), 5);
	assert_int_equal(mqtt_encode_suback(out, 7, 0x0102, codes, 4), 0);
	assert_int_equal(mqtt_encode_suback(out, sizeof(out), 1, codes, 0), 0);
	assert_int_equal(mqtt_encode_suback(out, sizeof(out), 0, codes, 1), 0);
	const uint8_t bad[] = {0x03};
	assert_int_equal(mqtt_encode_suback(out, sizeof(out), 1, bad, 1), 0);

	/* 200 codes: a two-byte remaining length. */
	static uint8_t many[200];
	memset(many, 0x80, sizeof(many));
	static uint8_t big[256];
	assert_int_equal(mqtt_encode_suback(big, sizeof(big), 3, many, 200), 1 + 2 + 2 + 200);
	assert_memory_equal(big, ((const uint8_t[]){0x90, 0xca, 0x01, 0x00, 0x03}), 5);
	assert_int_equal(big[204], 0x80);
	assert_int_equal(mqtt_encode_suback(big, 204, 3, many, 200), 0);
	/* More codes than a remaining length can carry: refused before any
	 * code is read. */
	assert_int_equal(mqtt_encode_suback(big, sizeof(big), 3, many, MQTT_MAX_REMAINING_LENGTH),
			 0);
}

/* ---------------------------------------------------------------------------
 * UTF-8, filters, matching
 */

static void test_utf8_valid(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		size_t len;
	} good[] = {
		{"", 0},
		{"dev0001", 7},
		{"\x7f", 1},
		{"\xc2\x80", 2},             /* U+0080 */
		{"\xc2\xb0" "C", 3},         /* degree sign */
		{"\xdf\xbf", 2},             /* U+07FF */
		{"\xe0\xa0\x80", 3},         /* U+0800 */
		{"\xed\x9f\xbf", 3},         /* U+D7FF, just below the surrogates */
		{"\xee\x80\x80", 3},         /* U+E000, just above */
		{"\xef\xbf\xbf", 3},         /* U+FFFF (noncharacter, allowed 1.5.3) */
		{"\xf0\x90\x80\x80", 4},     /* U+10000 */
		{"\xf4\x8f\xbf\xbf", 4},     /* U+10FFFF */
		{"\x01\x1f", 2},             /* controls: SHOULD NOT, not MUST NOT */
	};
	for (size_t i = 0; i < ARRAY_LEN(good); i++)
		assert_true(mqtt_utf8_valid(good[i].s, good[i].len));
	for (size_t i = 0; i < ARRAY_LEN(k_bad_utf8); i++)
		assert_false(mqtt_utf8_valid(k_bad_utf8[i].s, k_bad_utf8[i].len));
	assert_true(mqtt_utf8_valid(NULL, 0));
}

static void test_filter_valid(void **state)
{
	(void)state;
	static const char *const good[] = {
		"a", "a/b", "#", "+", "/", "//", "a/#", "a/+", "+/+", "/+", "+/#", "$SYS/#",
		"sport/tennis/+/ranking", "iot-2/evt/+/fmt/json", "a//b", "+/a/+/#",
	};
	for (size_t i = 0; i < ARRAY_LEN(good); i++)
		assert_true(mqtt_filter_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < ARRAY_LEN(k_bad_filters); i++)
		assert_false(mqtt_filter_valid(k_bad_filters[i], strlen(k_bad_filters[i])));
	/* Length, not NUL, delimits: "a/#" cut to "a/" is fine, "#x" cut to "#" too. */
	assert_true(mqtt_filter_valid("#x", 1));
	assert_false(mqtt_filter_valid("a", 0));
}

static void test_topic_matches(void **state)
{
	(void)state;
	static const struct {
		const char *filter;
		const char *topic;
		bool match;
	} k[] = {
		{"#", "a", true},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"#", "$SYS/broker/load", false}, /* 4.7.2 */
		{"+/broker/load", "$SYS/broker/load", false},
		{"+", "$SYS", false},
		{"$SYS/#", "$SYS/broker/load", true},
		{"$SYS/+/load", "$SYS/broker/load", true},
		{"a/$x", "a/$x", true},
		{"+/$x", "a/$x", true},
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"a/b", "a/bc", false},
		{"a/bc", "a/b", false},
		{"a/#", "a", true}, /* 4.7.1.2: parent level */
		{"a/#", "a/", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"a/#", "b/a", false},
		{"sport/tennis/player1/#", "sport/tennis/player1", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
		{"sport/tennis/+", "sport/tennis/player1", true},
		{"sport/tennis/+", "sport/tennis/player1/ranking", false},
		{"sport/+", "sport", false},
		{"sport/+", "sport/", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+/+", "/finance", true},
		{"/+", "/finance", true},
		{"+", "/finance", false},
		{"a/+/c", "a//c", true},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/d", false},
		{"+/#", "a", true},
		{"iot-2/evt/+/fmt/json", "iot-2/evt/status/fmt/json", true},
		{"iot-2/evt/+/fmt/json", "iot-2/evt/status/fmt/text", false},
		{"Sensors", "sensors", false}, /* case sensitive */
		{"a/#/b", "a/x/b", false},     /* invalid filters match nothing */
		{"a+", "a+", false},
		{"", "", false},
	};
	for (size_t i = 0; i < ARRAY_LEN(k); i++) {
		bool got = mqtt_topic_matches(k[i].filter, k[i].topic, strlen(k[i].topic));
		if (got != k[i].match)
			fail_msg("filter \"%s\" topic \"%s\": got %d", k[i].filter, k[i].topic,
				 (int)got);
	}
	/* topic_len, not NUL, delimits the topic. */
	assert_true(mqtt_topic_matches("a/b", "a/bXYZ", 3));
	assert_false(mqtt_topic_matches("a/bXYZ", "a/bXYZ", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_encode_boundaries),
		cmocka_unit_test(test_varint_encode_too_large),
		cmocka_unit_test(test_frame_varint_boundaries),
		cmocka_unit_test(test_frame_varint_roundtrip_sweep),
		cmocka_unit_test(test_frame_five_byte_varint),
		cmocka_unit_test(test_frame_non_minimal_varint),
		cmocka_unit_test(test_frame_too_large),
		cmocka_unit_test(test_frame_forbidden_types),
		cmocka_unit_test(test_frame_flags_per_type),
		cmocka_unit_test(test_frame_fixed_size_lengths),
		cmocka_unit_test(test_frame_stream_of_packets),
		cmocka_unit_test(test_connect_minimal_311),
		cmocka_unit_test(test_connect_full),
		cmocka_unit_test(test_connect_binary_password_and_will),
		cmocka_unit_test(test_connect_mqisdp_31),
		cmocka_unit_test(test_connect_mqisdp_empty_client_id),
		cmocka_unit_test(test_connect_mqtt5_refused),
		cmocka_unit_test(test_connect_other_levels_refused),
		cmocka_unit_test(test_connect_bad_protocol_name),
		cmocka_unit_test(test_connect_reserved_flag),
		cmocka_unit_test(test_connect_will_flag_combos),
		cmocka_unit_test(test_connect_will_topic_invalid),
		cmocka_unit_test(test_connect_password_without_username),
		cmocka_unit_test(test_connect_flag_fields_missing),
		cmocka_unit_test(test_connect_empty_client_id),
		cmocka_unit_test(test_connect_long_client_id),
		cmocka_unit_test(test_connect_client_id_bad_utf8),
		cmocka_unit_test(test_connect_username_bad_utf8),
		cmocka_unit_test(test_connect_trailing_bytes),
		cmocka_unit_test(test_connect_nonzero_header_flags),
		cmocka_unit_test(test_connect_truncated_every_offset),
		cmocka_unit_test(test_publish_qos0),
		cmocka_unit_test(test_publish_qos_flags),
		cmocka_unit_test(test_publish_empty_payload),
		cmocka_unit_test(test_publish_qos3),
		cmocka_unit_test(test_publish_dup_qos0),
		cmocka_unit_test(test_publish_packet_id_zero),
		cmocka_unit_test(test_publish_wildcard_topic),
		cmocka_unit_test(test_publish_empty_topic),
		cmocka_unit_test(test_publish_bad_utf8_topic),
		cmocka_unit_test(test_publish_topic_overruns_body),
		cmocka_unit_test(test_publish_truncated_every_offset),
		cmocka_unit_test(test_publish_large_frame_varint),
		cmocka_unit_test(test_decode_ack),
		cmocka_unit_test(test_subscribe_ok),
		cmocka_unit_test(test_subscribe_zero_filters),
		cmocka_unit_test(test_subscribe_bad_qos_byte),
		cmocka_unit_test(test_subscribe_missing_qos_byte),
		cmocka_unit_test(test_subscribe_invalid_filter),
		cmocka_unit_test(test_subscribe_packet_id_zero_and_truncation),
		cmocka_unit_test(test_unsubscribe),
		cmocka_unit_test(test_encode_connack),
		cmocka_unit_test(test_encode_ack_exact_bytes),
		cmocka_unit_test(test_encode_ack_roundtrip),
		cmocka_unit_test(test_encode_pingresp),
		cmocka_unit_test(test_encode_suback),
		cmocka_unit_test(test_encode_publish),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_filter_valid),
		cmocka_unit_test(test_topic_matches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
