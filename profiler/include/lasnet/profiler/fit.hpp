#pragma once
// Nonlinear least squares for the calibration: Levenberg-Marquardt with a forward-difference
// Jacobian and box bounds (a step that leaves the box is clamped onto it). The model being fit
// (the latency predictor) has kinks where its tile choice or its bound switches, so the method
// only asks for a residual vector; it accepts a step only when the cost drops, which keeps it
// robust across those kinks. An optional ridge term pulls each parameter towards its prior so
// that parameters the data do not determine stay where they started.
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace lasnet::profiler {

struct FitParameter {
  std::string name;
  double initial = 0;
  double lower = -1e300;
  double upper = 1e300;
  // A prior of its own, besides the problem's ridge: sqrt(prior_weight) * (x - prior) as one
  // more residual, for a parameter whose effect the data can barely tell from another's (0: none).
  double prior_weight = 0;
  double prior = 0;
};

struct FitProblem {
  std::vector<FitParameter> parameters;
  // Residuals at a parameter vector; the same length on every call. Called from several threads
  // at once (the Jacobian's columns), so it must not write shared state.
  std::function<std::vector<double>(std::span<const double>)> residuals;
  // Adds sqrt(ridge) * (x_i - initial_i) as an extra residual per parameter.
  double ridge = 0;
  // Where the iterations start, if not at the initial values (a warm start from an earlier
  // fit); the ridge still pulls towards the initial values. Empty, or one value per parameter.
  std::vector<double> start;
};

struct FitOptions {
  int max_iterations = 50;
  double relative_step = 1e-4;  // finite-difference step, relative to max(|x|, 1)
  double tolerance = 1e-10;     // stop when the cost improves by less than this, relatively
  double initial_damping = 1e-3;
};

struct FitResult {
  std::vector<double> values;             // fitted parameters, in FitProblem order
  std::vector<double> initial_residuals;  // data residuals at the start (no ridge rows)
  std::vector<double> final_residuals;    // and at the fitted values
  double initial_cost = 0;                // 0.5 * sum of squared data residuals
  double final_cost = 0;
  double final_objective = 0;  // what the fit minimised: final_cost plus the ridge and prior rows
  int iterations = 0;
  int evaluations = 0;
  bool converged = false;
};

FitResult fit_least_squares(const FitProblem& problem, const FitOptions& options = {});

// Root mean square of a residual vector (0 when empty).
double rms(std::span<const double> residuals);

// Solves the symmetric positive definite system A x = b (n x n, row-major) by Cholesky;
// returns false when A is not positive definite.
bool solve_spd(std::vector<double> a, std::vector<double>& b, std::size_t n);

}  // namespace lasnet::profiler
