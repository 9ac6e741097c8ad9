/* tbucket: a token bucket; see the header. Pure. */
#include "iotgw/tbucket.h"

static double level(const struct tbucket *b, double rate, double burst, uint64_t now_ms)
{
	if (b->at_ms == 0)
		return burst;
	double t = b->tokens;
	if (now_ms > b->at_ms)
		t += rate * (double)(now_ms - b->at_ms) / 1000.0;
	return t > burst ? burst : t;
}

uint64_t tb_take(struct tbucket *b, double rate, double burst, double cost, uint64_t now_ms)
{
	if (rate <= 0)
		return 0;
	double t = level(b, rate, burst, now_ms);
	b->tokens = t;
	b->at_ms = now_ms ? now_ms : 1;
	if (t <= 0) /* in debt: wait until it is paid, and a token more */
		return (uint64_t)((-t + 1) * 1000.0 / rate) + 1;
	b->tokens = t - cost;
	return 0;
}

bool tb_full(const struct tbucket *b, double rate, double burst, uint64_t now_ms)
{
	return rate <= 0 || level(b, rate, burst, now_ms) >= burst;
}
