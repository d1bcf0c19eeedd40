#pragma once
// What a plan looks like outside the program: the plan JSON (stable key order, schema in
// docs/scheduler.md), a Chrome/Perfetto trace of the planned timeline, and text/CSV tables.
// Formatting lives here and never in the search.
#include <string>
#include <string_view>

#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/scheduler/graph.hpp"
#include "lasnet/scheduler/search.hpp"
#include "lasnet/scheduler/streams.hpp"

namespace lasnet::scheduler {

// Version 1 was labelled "format": "lasnet-plan" and gave times in seconds (`_s` keys).
inline constexpr int plan_format_version = 2;
inline constexpr int trace_format_version = 1;

// The plan as JSON ("schema": "lasnet.plan", version plan_format_version), milliseconds
// throughout (`_ms` keys); docs/schema/plan.schema.json.
std::string plan_to_json(const Plan& plan, const predictor::Spec& spec,
                         const predictor::Profile& hw);

// Chrome trace event format, labelled "lasnet.trace" (docs/schema/trace.schema.json): one "X" event
// per kernel (ts/dur in microseconds), one track (tid) per stream named by thread_name metadata,
// every stream listed even if it stays idle.
std::string chrome_trace(const OpGraph& graph, const StreamSchedule& schedule,
                         std::string_view title);

// Human-readable report: summary, the granularity trade-off per stage, the stream options,
// the density scan (budget objective) and the blocks with their fusion and saving.
std::string plan_table(const Plan& plan, const predictor::Spec& spec, const predictor::Profile& hw);

// One row per (stage, candidate S): the trade-off table as CSV.
std::string plan_csv(const Plan& plan);

}  // namespace lasnet::scheduler
