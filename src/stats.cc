#include "stats.h"

namespace pagewarm {

StatsCounters& Counters() {
  static StatsCounters* counters = new StatsCounters();  // never destroyed
  return *counters;
}

}  // namespace pagewarm
