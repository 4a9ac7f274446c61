#include "CSluiceXDP.h"
