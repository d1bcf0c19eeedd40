#pragma once
// Reporters for `lasnet predict`: one result, three formats. Formatting lives here only.
#include <optional>
#include <string>

#include "context.hpp"
#include "lasnet/predictor/network.hpp"

namespace lasnet::cli {

enum class Level { op, block, stage };

struct PredictReport {
  std::string spec_name;
  std::string hardware;
  std::int64_t batch = 1;
  predictor::Precision precision = predictor::Precision::fp32;
  predictor::DynamicSpec dynamic;  // settings the dynamic prediction used
  // Convs priced at the schedules the project's kernels run them with (`--kernels`), not at the
  // model's best tile.
  bool kernel_schedules = false;
  predictor::NetworkPrediction dense;
  std::optional<predictor::NetworkPrediction> dynamic_prediction;
};

std::string render(const PredictReport& report, Level level, Format format);

// A plain aligned text table; the first row is the header.
std::string text_table(const std::vector<std::vector<std::string>>& rows);
std::string csv_escape(const std::string& cell);

}  // namespace lasnet::cli
