// Sweeps over random instances shrink by this factor in sanitizer builds (10x slower there).
#pragma once

#ifndef REMATCH_TEST_SCALE
#define REMATCH_TEST_SCALE 1
#endif
