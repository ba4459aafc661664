#include "CTCMU.h"
