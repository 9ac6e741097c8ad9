/* A fixed-seed xorshift64 generator for the unit tests' pseudo-random
 * cases: the same sequence on every run and machine, so a failure can be
 * reproduced. Each test program includes it once. */
#ifndef IOTGW_TEST_RAND_H
#define IOTGW_TEST_RAND_H

#include <stdint.h>

static uint64_t test_rand_state = 88172645463325252ull;

static uint64_t test_rand(void)
{
	test_rand_state ^= test_rand_state << 13;
	test_rand_state ^= test_rand_state >> 7;
	test_rand_state ^= test_rand_state << 17;
	return test_rand_state;
}

#endif
