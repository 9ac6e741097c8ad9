/* cpus: how many CPUs this process may use. Its affinity (sched_getaffinity:
 * taskset, systemd's CPUAffinity=, cpusets), lowered by a CPU quota on its
 * cgroup or any ancestor (cgroup v2 cpu.max, v1 cpu.cfs_quota_us over
 * cpu.cfs_period_us: systemd's CPUQuota=, docker --cpus, a Kubernetes CPU
 * limit), rounded up. A container limited by a quota still sees every core
 * of its host in its affinity; threads beyond its quota would only be
 * throttled. Reads /proc and /sys at each call; keeps nothing. */
#ifndef IOTGW_CPUS_H
#define IOTGW_CPUS_H

#include <stddef.h>

struct cpus {
	unsigned affinity; /* at least 1 */
	unsigned quota;    /* the smallest quota found, in whole CPUs rounded up; 0: none */
	char quota_at[1024]; /* the cgroup directory that sets it ("" if none) */
};

void cpus_available(struct cpus *out);
/* What the process may use: the affinity, or the quota if lower. */
unsigned cpus_usable(const struct cpus *c);

#endif
