/* metrics_http: the HTTP listener of [metrics] (/metrics, /healthz,
 * /readyz). Owned by the gateway; not a public interface. */
#ifndef IOTGW_METRICS_HTTP_H
#define IOTGW_METRICS_HTTP_H

#include "gateway_int.h"

struct metrics_http;

/* Binds every address of cfg (nbinds > 0) and serves from the gateway's
 * loop. NULL with a reason in err (nothing stays bound). */
struct metrics_http *metrics_http_open(struct gateway *gw, const struct cfg_metrics *cfg,
				       char *err, size_t errlen);
void metrics_http_close(struct metrics_http *h); /* NULL is fine */
/* The addresses it serves (cfg_binds_format): how a reload tells whether
 * they changed. */
const char *metrics_http_where(const struct metrics_http *h);

#endif
