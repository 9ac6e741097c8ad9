/* version: the one place the release number is written. */
#ifndef IOTGW_VERSION_H
#define IOTGW_VERSION_H

#define IOTGW_VERSION "0.1.0"

#endif
