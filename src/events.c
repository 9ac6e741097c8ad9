/* events: the names of include/iotgw/events.h's table. Pure. */
#include "iotgw/events.h"

const char *event_name(enum iotgw_event e)
{
#define IOTGW_EVENT_NAME(id, name) [EV_##id] = name,
	static const char *const names[EV__COUNT] = {[EV_NONE] = "", IOTGW_EVENTS(IOTGW_EVENT_NAME)};
#undef IOTGW_EVENT_NAME
	return (unsigned)e < EV__COUNT ? names[e] : "";
}
