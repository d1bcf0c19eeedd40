#include "lasnet/profiler/fit.hpp"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <exception>
#include <thread>

#include "lasnet/common/error.hpp"

namespace lasnet::profiler {

namespace {

double half_squared_norm(std::span<const double> r) {
  double s = 0;
  for (const double x : r) s += x * x;
  return 0.5 * s;
}

struct Evaluator {
  const FitProblem& problem;
  std::atomic<int> evaluations = 0;
  std::size_t data_size = 0;  // set by the first call, before any concurrent one

  // Data residuals followed by the ridge rows and the parameters' own prior rows.
  std::vector<double> operator()(std::span<const double> x) {
    ++evaluations;
    std::vector<double> r = problem.residuals(x);
    if (data_size == 0) data_size = r.size();
    if (r.size() != data_size) throw Error("fit: the residual vector changed length");
    for (const double v : r) {
      if (!std::isfinite(v)) throw Error("fit: a residual is not finite");
    }
    if (problem.ridge > 0) {
      const double w = std::sqrt(problem.ridge);
      for (std::size_t i = 0; i < x.size(); ++i) {
        r.push_back(w * (x[i] - problem.parameters[i].initial));
      }
    }
    for (std::size_t i = 0; i < x.size(); ++i) {
      const FitParameter& p = problem.parameters[i];
      if (p.prior_weight > 0) r.push_back(std::sqrt(p.prior_weight) * (x[i] - p.prior));
    }
    return r;
  }
};

std::vector<double> clamp_to_bounds(std::vector<double> x, const FitProblem& problem) {
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = std::clamp(x[i], problem.parameters[i].lower, problem.parameters[i].upper);
  }
  return x;
}

// Runs job(j) for j in [0, n) on up to the machine's hardware threads; the first exception a
// job throws is rethrown here once all have stopped. The Jacobian's columns are independent
// residual evaluations (each on its own profile copy), and they are nearly all of a fit's time.
template <class Job>
void parallel_for(std::size_t n, const Job& job) {
  const std::size_t workers =
      std::min<std::size_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<std::size_t> next = 0;
  std::exception_ptr failure;
  std::atomic<bool> failed = false;
  const auto work = [&] {
    for (std::size_t j = next++; j < n && !failed; j = next++) {
      try {
        job(j);
      } catch (...) {
        if (!failed.exchange(true)) failure = std::current_exception();
      }
    }
  };
  std::vector<std::jthread> threads;
  for (std::size_t t = 1; t < workers; ++t) threads.emplace_back(work);
  work();
  threads.clear();  // joins
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

double rms(std::span<const double> residuals) {
  if (residuals.empty()) return 0;
  double s = 0;
  for (const double x : residuals) s += x * x;
  return std::sqrt(s / static_cast<double>(residuals.size()));
}

bool solve_spd(std::vector<double> a, std::vector<double>& b, std::size_t n) {
  assert(a.size() == n * n && b.size() == n);
  // In-place Cholesky: a = L L^T, L in the lower triangle.
  for (std::size_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (std::size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) return false;
    const double l = std::sqrt(d);
    a[j * n + j] = l;
    for (std::size_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (std::size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / l;
    }
  }
  // Forward (L y = b), then back substitution (L^T x = y).
  for (std::size_t i = 0; i < n; ++i) {
    double s = b[i];
    for (std::size_t k = 0; k < i; ++k) s -= a[i * n + k] * b[k];
    b[i] = s / a[i * n + i];
  }
  for (std::size_t i = n; i-- > 0;) {
    double s = b[i];
    for (std::size_t k = i + 1; k < n; ++k) s -= a[k * n + i] * b[k];
    b[i] = s / a[i * n + i];
  }
  return true;
}

FitResult fit_least_squares(const FitProblem& problem, const FitOptions& options) {
  const std::size_t n = problem.parameters.size();
  if (n == 0) throw Error("fit: no parameters to fit");
  Evaluator evaluate{problem};
  std::vector<double> x(n);
  if (!problem.start.empty() && problem.start.size() != n) {
    throw Error("fit: the start vector has the wrong length");
  }
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = problem.start.empty() ? problem.parameters[i].initial : problem.start[i];
  }
  x = clamp_to_bounds(std::move(x), problem);

  std::vector<double> r = evaluate(x);
  const std::size_t data = evaluate.data_size;
  FitResult result;
  result.initial_residuals.assign(r.begin(), r.begin() + static_cast<std::ptrdiff_t>(data));
  result.initial_cost = half_squared_norm(result.initial_residuals);
  double cost = half_squared_norm(r);
  double damping = options.initial_damping;
  const std::size_t m = r.size();

  for (int iteration = 0; iteration < options.max_iterations; ++iteration) {
    result.iterations = iteration + 1;
    // Forward-difference Jacobian, m x n, column by column; a step that would leave the box
    // goes the other way.
    std::vector<double> jacobian(m * n);
    parallel_for(n, [&](std::size_t j) {
      double h = options.relative_step * std::max(std::fabs(x[j]), 1.0);
      if (x[j] + h > problem.parameters[j].upper) h = -h;
      std::vector<double> shifted = x;
      shifted[j] += h;
      const std::vector<double> rj = evaluate(shifted);
      for (std::size_t i = 0; i < m; ++i) jacobian[i * n + j] = (rj[i] - r[i]) / h;
    });
    // Normal equations: (J^T J + damping * diag(J^T J)) dx = -J^T r.
    std::vector<double> jtj(n * n, 0.0), jtr(n, 0.0);
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t a = 0; a < n; ++a) {
        const double ja = jacobian[i * n + a];
        if (ja == 0) continue;
        jtr[a] += ja * r[i];
        for (std::size_t b = 0; b < n; ++b) jtj[a * n + b] += ja * jacobian[i * n + b];
      }
    }
    bool improved = false;
    for (int attempt = 0; attempt < 12 && !improved; ++attempt) {
      std::vector<double> system = jtj;
      for (std::size_t a = 0; a < n; ++a) {
        // A floor keeps columns of a parameter the data ignore from making the system singular.
        system[a * n + a] += damping * std::max(jtj[a * n + a], 1e-12) + 1e-15;
      }
      std::vector<double> step(n);
      for (std::size_t a = 0; a < n; ++a) step[a] = -jtr[a];
      if (!solve_spd(system, step, n)) {
        damping *= 10;
        continue;
      }
      std::vector<double> candidate(n);
      for (std::size_t a = 0; a < n; ++a) candidate[a] = x[a] + step[a];
      candidate = clamp_to_bounds(std::move(candidate), problem);
      std::vector<double> rc = evaluate(candidate);
      const double candidate_cost = half_squared_norm(rc);
      if (candidate_cost < cost) {
        const double gain = (cost - candidate_cost) / std::max(cost, 1e-300);
        x = std::move(candidate);
        r = std::move(rc);
        cost = candidate_cost;
        damping = std::max(damping / 10, 1e-12);
        improved = true;
        if (gain < options.tolerance) result.converged = true;
      } else {
        damping *= 10;
      }
    }
    if (!improved || result.converged || cost == 0) {
      result.converged = true;
      break;
    }
  }
  result.values = x;
  result.final_residuals.assign(r.begin(), r.begin() + static_cast<std::ptrdiff_t>(data));
  result.final_cost = half_squared_norm(result.final_residuals);
  result.final_objective = cost;
  result.evaluations = evaluate.evaluations.load();
  return result;
}

}  // namespace lasnet::profiler
