// compare.h: ./train --plot DIRS: several runs' log.csv on one chart (plot.h's chart_svg).
#pragma once

#include "flags.h"

namespace train {

// --plot DIR1,DIR2,...: each folder's log.csv drawn in its own colour, named by --labels or by the
// folder's last path component (in a --plot-x sweep, runs of one label share a line), written to --out as an SVG file.
// Against the step by default (the train loss, or the val loss with --plot-loss val); with --plot-x
// SETTING, one point per run: its final loss against that setting of its model.ckpt (e.g. lr) or
// --x-values, where --log-x suits a swept rate. A run whose log shows a loss that is not finite, or
// whose last train loss is above its first, is marked as diverged. An item ending in .csv is instead a
// table of two columns (x,y with a header, e.g. --position-loss's), drawn as a line against its x.
void plot_runs(const Flags& f);

}  // namespace train
