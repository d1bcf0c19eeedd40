#include "lasnet/scheduler/search.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <thread>
#include <tuple>
#include <utility>

#include "lasnet/common/error.hpp"

namespace lasnet::scheduler {

namespace {

using predictor::BlockGraph;
using predictor::Execution;
using predictor::Fusion;
using predictor::Spec;

constexpr double infinity = std::numeric_limits<double>::infinity();

// a < b by more than rounding: ties keep the earlier (simpler) candidate.
bool clearly_less(double a, double b) {
  return a < b * (1 - 1e-12);
}

// The predictor's side of the search: builds a block at a candidate, prices it, schedules it on
// every stream count of the space. Tables are memoised per block shape (stage, first block or
// not), density and S; one PredictionCache serves the whole search.
class BlockEvaluator {
 public:
  // Latency of one block shape at one S: [fusion][stream option], infinity where infeasible.
  struct Table {
    Feasibility feasibility;
    std::vector<std::vector<double>> latency_s;
  };

  BlockEvaluator(const Spec& spec, const predictor::Profile& hw, std::vector<Fusion> fusions,
                 std::vector<std::int64_t> streams, predictor::KernelSchedule schedule)
      : spec_(spec),
        hw_(hw),
        schedule_(std::move(schedule)),
        cache_(hw),
        fusions_(std::move(fusions)),
        streams_(std::move(streams)) {}

  const std::vector<Fusion>& fusions() const { return fusions_; }
  const std::vector<std::int64_t>& streams() const { return streams_; }
  predictor::PredictionCache& cache() { return cache_; }
  const predictor::KernelSchedule& schedule() const { return schedule_; }
  std::size_t evaluations() const { return evaluations_; }

  const Table& table(std::size_t stage, std::size_t index, double density, std::int64_t s) {
    const Key key{stage, index == 0, density, s};
    if (const auto it = memo_.find(key); it != memo_.end()) return it->second;
    return memo_.emplace(key, compute(key, index, cache_, evaluations_)).first->second;
  }

  // One table the search will ask for: (stage, block index, density, S).
  struct Request {
    std::size_t stage;
    std::size_t index;
    double density;
    std::int64_t s;
  };
  // Computes the tables of `requests` not yet memoised on up to `threads` std::jthreads, each
  // with its own PredictionCache. Results land in slots indexed by request and are memoised in
  // request order afterwards, and the caches merge in thread order, so nothing a plan reports
  // depends on the thread count or on which thread finished first.
  void prefetch(const std::vector<Request>& requests, std::size_t threads) {
    std::vector<std::pair<Key, std::size_t>> todo;  // key, block index
    for (const auto& r : requests) {
      const Key key{r.stage, r.index == 0, r.density, r.s};
      if (memo_.contains(key)) continue;
      if (std::find_if(todo.begin(), todo.end(), [&](const auto& t) { return t.first == key; }) !=
          todo.end()) {
        continue;
      }
      todo.emplace_back(key, r.index);
    }
    const std::size_t workers = std::min(threads, todo.size());
    if (workers <= 1) return;  // table() computes them on demand, on this thread
    std::vector<std::optional<Table>> tables(todo.size());
    std::vector<std::exception_ptr> errors(todo.size());
    std::vector<std::size_t> evaluations(workers, 0);
    std::vector<predictor::PredictionCache> caches(workers, predictor::PredictionCache(hw_));
    std::atomic<std::size_t> next{0};
    {
      std::vector<std::jthread> pool;
      pool.reserve(workers);
      for (std::size_t w = 0; w < workers; ++w) {
        pool.emplace_back([&, w] {
          for (std::size_t i = next++; i < todo.size(); i = next++) {
            try {
              tables[i] = compute(todo[i].first, todo[i].second, caches[w], evaluations[w]);
            } catch (...) {
              errors[i] = std::current_exception();
            }
          }
        });
      }
    }  // the jthreads join here
    for (const auto& error : errors) {
      if (error) std::rethrow_exception(error);  // the first failure in request order
    }
    for (std::size_t i = 0; i < todo.size(); ++i)
      memo_.emplace(todo[i].first, std::move(*tables[i]));
    for (std::size_t w = 0; w < workers; ++w) {
      cache_.merge(caches[w]);
      evaluations_ += evaluations[w];
    }
  }

  // Prices `block` and schedules it on every stream option.
  Feasibility evaluate(const BlockGraph& block, std::vector<double>& latency_s) {
    return evaluate(block, latency_s, cache_, evaluations_);
  }

 private:
  using Key = std::tuple<std::size_t, bool, double, std::int64_t>;

  // Touches no member but reads spec_, hw_, fusions_ and streams_, which stay constant during
  // a search: safe on several threads at once, each with its own cache and counter.
  Table compute(const Key& key, std::size_t index, predictor::PredictionCache& cache,
                std::size_t& evaluations) const {
    const auto& [stage, first, density, s] = key;
    Table t;
    t.latency_s.assign(fusions_.size(), std::vector<double>(streams_.size(), infinity));
    t.feasibility = check_candidate(spec_, stage, Candidate{s, fusions_.front(), 1, density});
    if (t.feasibility.ok) {
      // A block that stays dense has one graph whatever the fusion. The S is feasible when
      // some fusion is; the first failure is the reason when none is.
      const bool dynamic = predictor::block_can_be_dynamic(spec_, stage, index);
      const bool union_form = predictor::block_has_union_form(spec_, stage, index);
      std::optional<Feasibility> any_ok;
      Feasibility first_failure;
      for (std::size_t f = 0; f < fusions_.size(); ++f) {
        if (!dynamic && f > 0) {
          t.latency_s[f] = t.latency_s[0];
          continue;
        }
        if (dynamic && !predictor::fusion_available(spec_.precision, fusions_[f])) {
          // A form the kernels cannot run at this precision is never recommended.
          std::fill(t.latency_s[f].begin(), t.latency_s[f].end(), infinity);
          if (first_failure.ok) {
            first_failure = {false, fmt::format("fusion {} is not run by the kernels in {}",
                                                predictor::to_string(fusions_[f]),
                                                predictor::to_string(spec_.precision))};
          }
          continue;
        }
        if (fusions_[f].union_conv1 && !union_form) {
          // The block ignores the union flag: the same graph as its plain form, if listed.
          Fusion plain = fusions_[f];
          plain.union_conv1 = false;
          const auto same =
              std::find(fusions_.begin(), fusions_.begin() + static_cast<std::ptrdiff_t>(f), plain);
          if (same != fusions_.begin() + static_cast<std::ptrdiff_t>(f)) {
            t.latency_s[f] = t.latency_s[static_cast<std::size_t>(same - fusions_.begin())];
            continue;
          }
        }
        const BlockGraph block = predictor::make_block(spec_, stage, index, Execution::dynamic,
                                                       {s, density, fusions_[f]});
        const auto feasible = evaluate(block, t.latency_s[f], cache, evaluations);
        if (feasible.ok) {
          any_ok = feasible;
        } else {
          std::fill(t.latency_s[f].begin(), t.latency_s[f].end(), infinity);
          if (first_failure.ok) first_failure = feasible;
        }
      }
      if (!any_ok) t.feasibility = first_failure;
    }
    return t;
  }

  Feasibility evaluate(const BlockGraph& block, std::vector<double>& latency_s,
                       predictor::PredictionCache& cache, std::size_t& evaluations) const {
    ++evaluations;
    const auto result = predictor::predict_block(block, cache, hw_, schedule_);
    for (const auto& op : result.ops) {
      // No finite latency, or no tile at all for an op that has work: the predictor found no
      // schedule that fits (e.g. a masker pooling a whole large map into one tile).
      const auto& p = op.prediction;
      if (!std::isfinite(p.latency_s) || (p.tiles <= 0 && !p.empty)) {
        return {false, fmt::format("{}: the predictor found no feasible schedule for {}",
                                   block.name, op.name)};
      }
    }
    const OpGraph graph = block_op_graph(block, result, hw_);
    for (std::size_t k = 0; k < streams_.size(); ++k) {
      latency_s[k] = schedule_streams(graph, streams_[k]).makespan_s;
    }
    return {};
  }

  const Spec& spec_;
  const predictor::Profile& hw_;
  predictor::KernelSchedule schedule_;
  predictor::PredictionCache cache_;
  std::vector<Fusion> fusions_;
  std::vector<std::int64_t> streams_;
  std::map<Key, Table> memo_;
  std::size_t evaluations_ = 0;
};

// The densities of the blocks: one uniform value or the spec's own.
struct DensityChoice {
  std::optional<double> uniform;
  double of(const Spec& spec, std::size_t stage, std::size_t index) const {
    return uniform ? *uniform : spec.dynamic.density.at(stage).at(index);
  }
};

// The optimum at one density, for every stream option.
struct Core {
  // [stream option][stage][granularity option]: the stage's latency, infinity if infeasible.
  std::vector<std::vector<std::vector<double>>> stage_latency_s;
  std::vector<double> fixed_latency_s;                   // stem + head per stream option
  std::vector<std::vector<std::size_t>> best_option;     // [stream option][stage], recommended
  std::vector<std::vector<std::size_t>> fastest_option;  // [stream option][stage]
  std::vector<double> network_latency_s;                 // [stream option]
  std::size_t best_streams = 0;                          // index into the stream options
};

// Per-stream-option latencies of the dense stem, layer stages and head.
std::vector<double> fixed_latency(const std::vector<BlockGraph>& dense, BlockEvaluator& eval) {
  std::vector<double> total(eval.streams().size(), 0.0);
  for (const auto& block : dense) {
    if (block.name != "stem" && block.name != "head" && block.stage >= 0) continue;
    std::vector<double> latency(eval.streams().size(), 0.0);
    eval.evaluate(block, latency);
    for (std::size_t k = 0; k < total.size(); ++k) total[k] += latency[k];
  }
  return total;
}

// Best allowed fusion of one block's table at one S and stream option.
std::size_t best_fusion(const BlockEvaluator::Table& t, const std::vector<bool>& allowed,
                        std::size_t k) {
  std::size_t best = t.latency_s.size();
  for (std::size_t f = 0; f < t.latency_s.size(); ++f) {
    if (!allowed[f]) continue;
    if (best == t.latency_s.size() || clearly_less(t.latency_s[f][k], t.latency_s[best][k])) {
      best = f;
    }
  }
  return best;
}

// The recommended option of a stage's row: the finest S within `tolerance` of the fastest.
std::size_t recommended_option(const std::vector<double>& row, const std::vector<std::int64_t>& s,
                               std::size_t fastest, double tolerance) {
  std::size_t chosen = fastest;
  for (std::size_t o = 0; o < row.size(); ++o) {
    if (row[o] <= row[fastest] * (1 + tolerance) && s[o] < s[chosen]) chosen = o;
  }
  return chosen;
}

Core solve(const Spec& spec, const SearchSpace& space, const DensityChoice& density,
           const std::vector<bool>& allowed, const std::vector<double>& fixed, double tolerance,
           std::size_t threads, BlockEvaluator& eval) {
  const std::size_t ks = space.streams.size();
  if (threads > 1) {
    // Every table the loop below reads, in the loop's order.
    std::vector<BlockEvaluator::Request> requests;
    for (std::size_t st = 0; st < spec.stages.size(); ++st) {
      for (const std::int64_t s : space.granularity[st]) {
        for (std::size_t i = 0; i < static_cast<std::size_t>(spec.stages[st].blocks); ++i) {
          requests.push_back({st, i, density.of(spec, st, i), s});
        }
      }
    }
    eval.prefetch(requests, threads);
  }
  Core core;
  core.fixed_latency_s = fixed;
  core.stage_latency_s.assign(ks, {});
  for (auto& per_k : core.stage_latency_s) {
    for (const auto& options : space.granularity) per_k.emplace_back(options.size(), 0.0);
  }
  for (std::size_t st = 0; st < spec.stages.size(); ++st) {
    for (std::size_t o = 0; o < space.granularity[st].size(); ++o) {
      const std::int64_t s = space.granularity[st][o];
      for (std::size_t i = 0; i < static_cast<std::size_t>(spec.stages[st].blocks); ++i) {
        const auto& t = eval.table(st, i, density.of(spec, st, i), s);
        for (std::size_t k = 0; k < ks; ++k) {
          const double block_latency =
              t.feasibility.ok ? t.latency_s[best_fusion(t, allowed, k)][k] : infinity;
          core.stage_latency_s[k][st][o] += block_latency;
        }
      }
    }
  }
  core.best_option.assign(ks, std::vector<std::size_t>(spec.stages.size(), 0));
  core.fastest_option = core.best_option;
  core.network_latency_s.assign(ks, 0.0);
  for (std::size_t k = 0; k < ks; ++k) {
    double total = fixed[k];
    for (std::size_t st = 0; st < spec.stages.size(); ++st) {
      const auto& row = core.stage_latency_s[k][st];
      std::size_t best = 0;
      for (std::size_t o = 1; o < row.size(); ++o) {
        if (clearly_less(row[o], row[best])) best = o;
      }
      core.fastest_option[k][st] = best;
      if (!row.empty() && std::isfinite(row[best])) {
        best = recommended_option(row, space.granularity[st], best, tolerance);
      }
      core.best_option[k][st] = best;
      total += row.empty() ? infinity : row[best];
    }
    core.network_latency_s[k] = total;
    if (clearly_less(total, core.network_latency_s[core.best_streams])) core.best_streams = k;
  }
  return core;
}

// Fills the plan from the optimum at one density.
void assemble(const Spec& spec, const predictor::Profile& hw, const SearchSpace& space,
              const DensityChoice& density, const std::vector<bool>& allowed, const Core& core,
              BlockEvaluator& eval, const std::vector<BlockGraph>& dense, Plan& plan) {
  const std::size_t k = core.best_streams;
  const std::size_t one = 0;  // streams are ascending from 1
  plan.density = density.uniform;
  plan.streams = space.streams[k];
  plan.latency_s = core.network_latency_s[k];
  plan.granularity.clear();
  plan.stages.clear();
  for (std::size_t st = 0; st < spec.stages.size(); ++st) {
    StagePlan stage;
    stage.name = spec.stages[st].name;
    const std::size_t best = core.best_option[k][st];
    stage.granularity = space.granularity[st][best];
    stage.fastest_granularity = space.granularity[st][core.fastest_option[k][st]];
    stage.latency_s = core.stage_latency_s[k][st][best];
    for (std::size_t o = 0; o < space.granularity[st].size(); ++o) {
      GranularityOption option;
      option.granularity = space.granularity[st][o];
      option.feasibility = check_candidate(spec, st, {option.granularity, {}, 1, 0});
      option.latency_s = core.stage_latency_s[k][st][o];
      if (option.feasibility.ok && !std::isfinite(option.latency_s)) {
        option.feasibility =
            eval.table(st, 0, density.of(spec, st, 0), option.granularity).feasibility;
        if (option.feasibility.ok) option.feasibility = {false, "no feasible block schedule"};
      }
      option.network_latency_s = plan.latency_s - stage.latency_s + option.latency_s;
      stage.options.push_back(std::move(option));
    }
    plan.granularity.push_back(stage.granularity);
    plan.stages.push_back(std::move(stage));
  }
  plan.stream_options.clear();
  plan.blocks.clear();
  plan.graph = OpGraph();
  plan.schedule = StreamSchedule();
  if (!std::isfinite(plan.latency_s)) {
    // Some stage has no feasible S: the plan is a value that says why, with no timeline.
    for (const auto& stage : plan.stages) {
      if (std::isfinite(stage.latency_s)) continue;
      std::string reasons;
      for (const auto& o : stage.options) {
        reasons += fmt::format("{}{}", reasons.empty() ? "" : "; ", o.feasibility.reason);
      }
      plan.feasibility = {
          false, fmt::format("stage {}: no feasible granularity ({})", stage.name, reasons)};
      break;
    }
    return;
  }
  for (std::size_t j = 0; j < space.streams.size(); ++j) {
    StreamOption option{space.streams[j], core.network_latency_s[j], {}};
    for (std::size_t st = 0; st < spec.stages.size(); ++st) {
      option.granularity.push_back(space.granularity[st][core.best_option[j][st]]);
    }
    plan.stream_options.push_back(std::move(option));
  }

  // The blocks: stem, every block at its best fusion, head.
  const auto dense_choice = [&](const BlockGraph& block) {
    BlockChoice c;
    c.name = block.name;
    std::vector<double> latency(space.streams.size(), 0.0);
    eval.evaluate(block, latency);
    c.latency_s = latency[k];
    c.unfused_latency_s = latency[k];
    c.single_stream_latency_s = latency[one];
    return c;
  };
  if (!dense.empty() && dense.front().name == "stem")
    plan.blocks.push_back(dense_choice(dense.front()));
  // Layer stages run dense, where they sit between the block stages.
  std::size_t next_layer_stage = 0;
  const auto layer_stages_before = [&](std::size_t stage) {
    for (; next_layer_stage < spec.layer_stages.size() &&
           spec.layer_stages[next_layer_stage].before <= stage;
         ++next_layer_stage) {
      const auto& name = spec.layer_stages[next_layer_stage].name;
      const auto it = std::find_if(dense.begin(), dense.end(),
                                   [&](const BlockGraph& b) { return b.name == name; });
      assert(it != dense.end());
      plan.blocks.push_back(dense_choice(*it));
    }
  };
  for (std::size_t st = 0; st < spec.stages.size(); ++st) {
    layer_stages_before(st);
    for (std::size_t i = 0; i < static_cast<std::size_t>(spec.stages[st].blocks); ++i) {
      const double d = density.of(spec, st, i);
      const auto& t = eval.table(st, i, d, plan.granularity[st]);
      BlockChoice c;
      c.name = fmt::format("{}.{}", spec.stages[st].name, i);
      c.stage = static_cast<std::int64_t>(st);
      c.index_in_stage = static_cast<std::int64_t>(i);
      c.dynamic = predictor::block_can_be_dynamic(spec, st, i);
      c.granularity = plan.granularity[st];
      c.density = d;
      const std::size_t f = best_fusion(t, allowed, k);
      if (c.dynamic) c.fusion = eval.fusions()[f];
      c.latency_s = t.latency_s[f][k];
      c.unfused_latency_s = t.latency_s[0][k];  // fusion list starts with "none"
      c.single_stream_latency_s = t.latency_s[f][one];
      plan.blocks.push_back(std::move(c));
    }
  }
  layer_stages_before(spec.stages.size());
  if (!dense.empty() && dense.back().name == "head")
    plan.blocks.push_back(dense_choice(dense.back()));

  // The timeline: the whole network graph scheduled on the plan's streams. Blocks are separated
  // by barriers, so its makespan is the sum the search computed.
  const auto blocks = plan_blocks(spec, plan);
  plan.graph = predict_op_graph(blocks, eval.cache(), hw, eval.schedule());
  plan.schedule = schedule_streams(plan.graph, plan.streams);
  plan.single_stream_latency_s = serial_latency_s(plan.graph);
  assert(std::abs(plan.schedule.makespan_s - plan.latency_s) <=
         1e-9 * std::max(plan.latency_s, 1e-12));
}

std::vector<double> density_grid(double step) {
  if (!(step > 0 && step <= 1)) {
    throw Error(fmt::format("density step must be in (0, 1], got {}", step));
  }
  const auto n = static_cast<std::int64_t>(std::ceil(1.0 / step - 1e-9));
  std::vector<double> grid;
  for (std::int64_t i = 0; i < n; ++i) grid.push_back(static_cast<double>(i) * step);
  grid.push_back(1.0);
  return grid;
}

}  // namespace

std::string_view to_string(Objective objective) {
  switch (objective) {
    case Objective::min_latency:
      return "min_latency";
    case Objective::max_density:
      return "max_density";
  }
  return "?";
}

Plan search(const Spec& spec, const predictor::Profile& hw, const SearchRequest& request) {
  if (!(request.granularity_tolerance >= 0 && request.granularity_tolerance <= 1)) {
    throw Error(fmt::format("the granularity tolerance must be in [0, 1], got {}",
                            request.granularity_tolerance));
  }
  if (request.max_streams < 1) {
    throw Error(fmt::format("streams must be at least 1, got {}", request.max_streams));
  }
  if (request.threads < 1) {
    throw Error(fmt::format("threads must be at least 1, got {}", request.threads));
  }
  const auto threads = static_cast<std::size_t>(request.threads);
  if (request.objective == Objective::min_latency) {
    if (request.density && !(*request.density >= 0 && *request.density <= 1)) {
      throw Error(fmt::format("density {} is outside [0, 1]", *request.density));
    }
    if (!request.density &&
        (!spec.dynamic.enabled || spec.dynamic.density.size() != spec.stages.size())) {
      throw Error(fmt::format("{}: the spec has no densities; give one (--density)", spec.name));
    }
  } else if (!(request.budget_s > 0)) {
    throw Error(fmt::format("the latency budget must be positive, got {} s", request.budget_s));
  }
  const std::vector<double> densities = request.objective == Objective::max_density
                                            ? density_grid(request.density_step)
                                            : std::vector<double>{request.density.value_or(-1.0)};
  SearchSpace space = default_space(spec, request.max_streams, densities);
  if (!request.granularity.empty()) {
    if (request.granularity.size() != spec.stages.size()) {
      throw Error(fmt::format("granularity choices for {} stages, but {} has {}",
                              request.granularity.size(), spec.name, spec.stages.size()));
    }
    space.granularity = request.granularity;
    for (std::size_t st = 0; st < space.granularity.size(); ++st) {
      if (space.granularity[st].empty()) {
        throw Error(fmt::format("no granularity to try for stage {}", spec.stages[st].name));
      }
    }
  }
  if (!request.fusions.empty()) space.fusion = request.fusions;
  // The evaluator always prices "none" first: it is every block's unfused baseline.
  std::vector<Fusion> fusions{Fusion{false, false, false}};
  std::vector<bool> allowed{false};
  for (const auto& f : space.fusion) {
    if (f == fusions.front()) {
      allowed.front() = true;
    } else if (std::find(fusions.begin(), fusions.end(), f) == fusions.end()) {
      fusions.push_back(f);
      allowed.push_back(true);
    }
  }
  BlockEvaluator eval(spec, hw, fusions, space.streams, request.kernel_schedule);

  const auto dense = predictor::build_network(spec, Execution::dense);
  const auto fixed = fixed_latency(dense, eval);

  Plan plan;
  plan.objective = request.objective;
  plan.budget_s = request.budget_s;
  plan.max_streams = request.max_streams;
  plan.kernel_schedules = static_cast<bool>(request.kernel_schedule);
  plan.granularity_tolerance = request.granularity_tolerance;
  plan.plans_in_space = plan_count(spec, space);

  if (request.objective == Objective::min_latency) {
    const DensityChoice density{request.density};
    const Core core =
        solve(spec, space, density, allowed, fixed, request.granularity_tolerance, threads, eval);
    assemble(spec, hw, space, density, allowed, core, eval, dense, plan);
  } else {
    // Latency grows with density (more patches never cost less), so the scan is coarse to
    // fine: every tenth grid density (and 1) first, then upward from the largest coarse density
    // that meets the budget until one misses. Every scanned density is reported.
    const auto& grid = space.density;
    std::map<std::size_t, Core> cores;
    const auto meets = [&](std::size_t i) {
      auto it = cores.find(i);
      if (it == cores.end()) {
        it = cores
                 .emplace(i, solve(spec, space, DensityChoice{grid[i]}, allowed, fixed,
                                   request.granularity_tolerance, threads, eval))
                 .first;
      }
      const Core& c = it->second;
      return c.network_latency_s[c.best_streams] <= request.budget_s * (1 + 1e-12);
    };
    constexpr std::size_t coarse = 10;
    std::vector<std::size_t> coarse_points;
    for (std::size_t i = 0; i < grid.size(); i += coarse) coarse_points.push_back(i);
    if (coarse_points.back() != grid.size() - 1) coarse_points.push_back(grid.size() - 1);
    std::optional<std::size_t> chosen;
    for (const std::size_t i : coarse_points) {
      if (meets(i)) chosen = i;
    }
    if (chosen) {
      for (std::size_t i = *chosen + 1; i < std::min(*chosen + coarse, grid.size()); ++i) {
        if (!meets(i)) break;
        chosen = i;
      }
    }
    for (const auto& [i, c] : cores) {
      const double latency = c.network_latency_s[c.best_streams];
      plan.density_scan.push_back({grid[i], latency, latency <= request.budget_s * (1 + 1e-12)});
    }
    const std::size_t at = chosen.value_or(0);
    assemble(spec, hw, space, DensityChoice{grid[at]}, allowed, cores.at(at), eval, dense, plan);
    if (!chosen && plan.feasibility.ok) {
      plan.feasibility = {false,
                          fmt::format("even at density 0 the best plan takes {:.4f} ms, over the "
                                      "{:.4f} ms budget",
                                      plan.latency_s * 1e3, request.budget_s * 1e3)};
    }
  }

  // The dense baseline on one stream and on the plan's streams.
  const OpGraph dense_graph = predict_op_graph(dense, eval.cache(), hw, request.kernel_schedule);
  plan.dense_latency_s = serial_latency_s(dense_graph);
  plan.dense_streams_latency_s = schedule_streams(dense_graph, plan.streams).makespan_s;
  plan.block_evaluations = eval.evaluations();
  plan.predicted_ops = eval.cache().size();
  return plan;
}

std::vector<BlockGraph> plan_blocks(const Spec& spec, const Plan& plan) {
  std::vector<BlockGraph> out;
  const auto dense = predictor::build_network(spec, Execution::dense);
  for (const auto& c : plan.blocks) {
    if (c.stage < 0) {
      const auto it = std::find_if(dense.begin(), dense.end(),
                                   [&](const BlockGraph& b) { return b.name == c.name; });
      assert(it != dense.end());
      out.push_back(*it);
      continue;
    }
    out.push_back(predictor::make_block(spec, static_cast<std::size_t>(c.stage),
                                        static_cast<std::size_t>(c.index_in_stage),
                                        Execution::dynamic, {c.granularity, c.density, c.fusion}));
  }
  return out;
}

Spec scheduled_spec(const Spec& spec, const Plan& plan) {
  Spec out = spec;
  if (out.dynamic.mode == predictor::DynamicMode::spatial) {
    predictor::set_granularity(out, plan.granularity, "scheduled granularity");
    // Each block's chosen fusion, so that predict and validate price the plan that was chosen.
    out.dynamic.fusion.clear();
    for (const auto& stage : spec.stages) {
      out.dynamic.fusion.emplace_back(static_cast<std::size_t>(stage.blocks), predictor::Fusion{});
    }
    for (const auto& c : plan.blocks) {
      if (c.stage < 0 || !c.dynamic) continue;
      out.dynamic.fusion.at(static_cast<std::size_t>(c.stage))
          .at(static_cast<std::size_t>(c.index_in_stage)) = c.fusion;
    }
  }
  if (plan.density) predictor::set_density(out, *plan.density, "scheduled density");
  out.dynamic.enabled = true;
  return out;
}

}  // namespace lasnet::scheduler
