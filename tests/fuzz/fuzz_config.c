/* libFuzzer target: the configuration parser must report, never crash or
 * leak, whatever bytes the file holds (an operator's typo, a truncated
 * write, a binary file named by mistake). */
#include <stddef.h>
#include <stdint.h>

#include "iotgw/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_diag(void *ctx, enum cfg_severity sev, const char *file, int line,
		    const char *msg)
{
	(void)ctx;
	(void)sev;
	(void)file;
	(void)line;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iotgw_config cfg;
	cfg_parse_string((const char *)data, size, "fuzz.conf", &cfg, no_diag, NULL);
	cfg_free(&cfg);
	return 0;
}
