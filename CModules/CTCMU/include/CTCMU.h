// TCMU kernel ring + TCM-USER netlink shim (see Sources/TCMU). Filled in by the TCMU work.
#ifndef CTCMU_H
#define CTCMU_H
#include <stdint.h>
#endif
