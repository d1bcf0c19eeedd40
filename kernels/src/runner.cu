#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <utility>

#include "context_impl.cuh"
#include "conv.cuh"
#include "conv_f16.cuh"
#include "cuda_check.cuh"
#include "dynamic.cuh"
#include "lasnet/kernels/runner.hpp"
#include "lt_gemm.cuh"
#include "se.cuh"
#include "typed_ops.cuh"

namespace lasnet::kernels {

using detail::ConvArgs;
using detail::DeviceBuffer;
using detail::LtGemm;
using detail::RowMap;

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" status
    return 0;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
Context::Context() : impl_(std::make_unique<Impl>()) {}
Context::~Context() = default;
Context::Context(Context&&) noexcept = default;
Context& Context::operator=(Context&&) noexcept = default;
bool Context::wgmma() const {
  return impl_->wgmma;
}

namespace {

template <class T>
DeviceBuffer<T> alloc(long long count) {
  return DeviceBuffer<T>(static_cast<std::size_t>(std::max(count, 0LL)));
}

int to_int(std::int64_t v) {
  return static_cast<int>(v);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
struct BlockRunner::Impl {
  // x: the input copy of this run (the output too, with an in-place residual), of the storage
  // type (float, or __half for fp16).
  using Launch = std::function<void(cudaStream_t, void* x)>;
  struct Step {
    StepInfo info;
    Launch launch;
  };

  Context::Impl* ctx = nullptr;
  BlockConfig cfg;
  float bm = 0;
  std::int64_t expected = 0;
  PatchGrid grid;
  detail::PatchGeometry geo;
  long long max_patches = 0;
  long long x_elems = 0;
  bool in_place = false;       // DynamicSettings::in_place_residual: out aliases x
  std::int64_t last_copy = 0;  // input copy of the latest run (its output, in place)

  DeviceBuffer<float> x, w1, b1, w2, b2, w3, b3, wsc, bsc, wm;
  DeviceBuffer<float> y1, y2, out, sc, pixel_logits, pool_partials, patch_logits, gx, g1, g2, g3;
  DeviceBuffer<float> col;  // conv2's taps, where it runs as im2col + cuBLASLt
  DeviceBuffer<float> wse1, bse1, wse2, bse2, se_mean, se_scale, se_out, se_scratch;  // SE blocks
  DeviceBuffer<std::uint8_t> mask, forced;
  DeviceBuffer<std::int32_t> index, count;
  DeviceBuffer<char> cub_temp;
  // The union form: the needed conv1 pixels (capacity N*H*W), their count, the select's temp.
  DeviceBuffer<std::int32_t> needed, needed_count;
  DeviceBuffer<char> dilate_temp;
  std::int64_t expected_needed = 0;         // needed pixels of the calibrated (or explicit) mask
  std::vector<DeviceBuffer<float>> splitk;  // split-K workspaces, one per split conv
  std::vector<std::unique_ptr<LtGemm>> gemms;
  std::vector<Step> steps;
  std::vector<StepInfo> infos;
  // fp16 (Precision::fp16): every map, weight and bias in __half; the masker's logits stay fp32
  // (pixel_logits, patch_logits above). Only the bottleneck's cuBLASLt forms (check_supported).
  struct Half {
    DeviceBuffer<__half> x, w1, b1, w2, b2, w3, b3, wsc, bsc, wm;
    DeviceBuffer<__half> y1, y2, out, sc, sc_col, gx, g1, g2, g3, col, needed_x, needed_y1;
  } h;
  bool half = false;  // cfg.precision == Precision::fp16

  Impl(Context::Impl& context, const BlockConfig& config);
  void* x_at(std::int64_t copy) const {
    return half ? static_cast<void*>(h.x.get() + copy * x_elems)
                : static_cast<void*>(x.get() + copy * x_elems);
  }
  void* out_ptr() const { return half ? static_cast<void*>(h.out.get()) : out.get(); }
  void init_half();
  void build_half_dense();
  void build_half_dynamic();
  void add_half_shortcut();
  // An fp16 cuBLASLt GEMM (fp32 sums) planned for `rows` rows, kept for the runner's life.
  const LtGemm* half_gemm(long long rows, long long k, long long n, const __half* bias, bool relu,
                          bool residual);
  void fill(DeviceBuffer<float>& buf, long long count, TensorId id, std::int64_t copy = 0);
  void calibrate_masker(const void* input, double density);
  void build_dense();
  void build_dynamic();
  void build_basic_dense();
  void build_basic_dynamic();
  void init_masker();  // the patch geometry and the masker's buffers and bias
  void add_shortcut();
  // SE blocks: the "se" step over conv2's output rows; returns conv3's input (the rows as they
  // are without SE).
  float* add_se(float* conv2_rows, long long max_rows, bool patches);
  void add_conv(const std::string& name, ConvArgs args, bool src_is_x, bool residual_is_x,
                long long rows_hint, double flops, double bytes, bool out_is_x = false);
  // `fn(stream, x)` with x as Elem* (the storage type of the step's maps).
  template <class Elem = float, class F>
  void add_step(const std::string& name, const std::string& kernel, double flops, double bytes,
                F fn) {
    steps.push_back(
        {StepInfo{name, kernel, flops, bytes},
         [fn = std::move(fn)](cudaStream_t st, void* xp) { fn(st, static_cast<Elem*>(xp)); }});
  }
};

void BlockRunner::Impl::fill(DeviceBuffer<float>& buf, long long n, TensorId id,
                             std::int64_t copy) {
  // x >= 0 with an in-place residual: its precondition (x is a previous ReLU's output).
  detail::fill_random(buf.get() + copy * n, n, cfg.seed, random_stream(id, copy),
                      random_scale(cfg.shape, id), nullptr, id == TensorId::x && in_place);
}

BlockRunner::Impl::Impl(Context::Impl& context, const BlockConfig& config)
    : ctx(&context), cfg(config) {
  const Support support = check_supported(cfg);
  if (!support.ok) throw lasnet::Error("BlockRunner: " + support.reason);
  const auto& s = cfg.shape;
  in_place = kernels::in_place(cfg);
  x_elems = s.batch * s.height * s.width * s.in_channels;
  half = cfg.precision == Precision::fp16;
  if (half) {
    init_half();
    if (cfg.dynamic) {
      build_half_dynamic();
    } else {
      build_half_dense();
    }
    LASNET_CUDA_CHECK(cudaDeviceSynchronize());
    for (const auto& st : steps) infos.push_back(st.info);
    return;
  }
  x = alloc<float>(x_elems * cfg.input_copies);
  for (std::int64_t c = 0; c < cfg.input_copies; ++c) fill(x, x_elems, TensorId::x, c);
  // Sizes as make_block_data's (a basic block: two 3x3 convs, no conv3; separable: no conv1).
  const std::int64_t conv2_out = s.basic() ? s.out_channels : s.mid_channels;
  if (!s.separable()) {
    w1 = alloc<float>(s.mid_channels * s.in_channels * (s.basic() ? 9 : 1));
    fill(w1, static_cast<long long>(w1.size()), TensorId::w1);
    b1 = alloc<float>(s.mid_channels);
    fill(b1, s.mid_channels, TensorId::b1);
  }
  w2 = alloc<float>(conv2_out * 9 * (s.mid_channels / s.groups));
  fill(w2, static_cast<long long>(w2.size()), TensorId::w2);
  b2 = alloc<float>(conv2_out);
  fill(b2, conv2_out, TensorId::b2);
  if (!s.basic()) {
    w3 = alloc<float>(s.out_channels * s.mid_channels);
    fill(w3, static_cast<long long>(w3.size()), TensorId::w3);
    b3 = alloc<float>(s.out_channels);
    fill(b3, s.out_channels, TensorId::b3);
  }
  if (s.has_projection()) {
    wsc = alloc<float>(s.out_channels * s.in_channels);
    fill(wsc, static_cast<long long>(wsc.size()), TensorId::wsc);
    bsc = alloc<float>(s.out_channels);
    fill(bsc, s.out_channels, TensorId::bsc);
    sc = alloc<float>(s.batch * s.out_height() * s.out_width() * s.out_channels);
  }
  wm = alloc<float>(s.in_channels);
  fill(wm, s.in_channels, TensorId::wm);
  if (s.se_channels > 0) {
    wse1 = alloc<float>(s.se_channels * s.mid_channels);
    fill(wse1, static_cast<long long>(wse1.size()), TensorId::wse1);
    bse1 = alloc<float>(s.se_channels);
    fill(bse1, s.se_channels, TensorId::bse1);
    wse2 = alloc<float>(s.mid_channels * s.se_channels);
    fill(wse2, static_cast<long long>(wse2.size()), TensorId::wse2);
    bse2 = alloc<float>(s.mid_channels);
    fill(bse2, s.mid_channels, TensorId::bse2);
    se_mean = alloc<float>(s.batch * s.mid_channels);
    se_scale = alloc<float>(s.batch * s.mid_channels);
  }
  if (!in_place) out = alloc<float>(s.batch * s.out_height() * s.out_width() * s.out_channels);
  if (s.basic()) {
    if (cfg.dynamic) {
      build_basic_dynamic();
    } else {
      build_basic_dense();
    }
  } else if (cfg.dynamic) {
    build_dynamic();
  } else {
    build_dense();
  }
  LASNET_CUDA_CHECK(cudaDeviceSynchronize());
  for (const auto& st : steps) infos.push_back(st.info);
}

void BlockRunner::Impl::add_conv(const std::string& name, ConvArgs args, bool src_is_x,
                                 bool residual_is_x, long long rows_hint, double flops,
                                 double bytes, bool out_is_x) {
  detail::ConvPlan plan =
      detail::plan_conv(args, cfg.precision == Precision::tf32, rows_hint, ctx->sm_count);
  if (cfg.legacy_direct_conv &&
      (plan.impl == ConvImpl::depthwise || plan.impl == ConvImpl::grouped)) {
    plan = detail::ConvPlan{};
    plan.impl = ConvImpl::direct;
  }
  if (cfg.wgmma.value_or(ctx->wgmma)) {
    if (!ctx->wgmma) throw lasnet::Error("BlockRunner: wgmma asked for, but not built/available");
    plan = kernels::use_wgmma(plan, detail::shape_of(args, rows_hint), ctx->sm_count);
  }
  if (const long long ws = detail::splitk_workspace_floats(args, plan); ws > 0) {
    splitk.push_back(alloc<float>(ws));
    args.partial = splitk.back().get();
  }
  add_step(name, detail::to_string(plan), flops, bytes,
           [args, plan, src_is_x, residual_is_x, out_is_x](cudaStream_t st, float* xp) {
             ConvArgs a = args;
             if (src_is_x) a.src = xp;
             if (residual_is_x) a.residual = xp;
             // In place: each epilogue thread reads its residual element before it stores the
             // same element, and patches do not overlap, so the aliasing is race-free.
             if (out_is_x) a.out = xp;
             detail::launch_conv(a, plan, st);
           });
}

namespace {
RowMap grid_map(long long rows, int gh, int gw) {
  RowMap m;
  m.kind = RowMap::grid;
  m.gh = gh;
  m.gw = gw;
  m.rows_max = rows;
  return m;
}
}  // namespace

void BlockRunner::Impl::add_shortcut() {
  const auto& s = cfg.shape;
  if (!s.has_projection()) return;
  const int h = to_int(s.height), w = to_int(s.width), ho = to_int(s.out_height()),
            wo = to_int(s.out_width()), cin = to_int(s.in_channels), cout = to_int(s.out_channels);
  const long long px_out = s.batch * s.out_height() * s.out_width();
  const double f = 4.0;
  ConvArgs a;
  a.src_h = h, a.src_w = w, a.src_c = cin, a.stride = to_int(s.stride), a.cin_g = cin;
  a.a_map = grid_map(px_out, ho, wo);
  a.weight = wsc.get(), a.cout_g = cout, a.out = sc.get(), a.out_c = cout, a.bias = bsc.get();
  add_conv("shortcut", a, true, false, px_out, 2.0 * px_out * cin * cout,
           f * (px_out * cin + 1.0 * cin * cout + px_out * cout));
}

void BlockRunner::Impl::init_masker() {
  const auto& s = cfg.shape;
  const auto& d = *cfg.dynamic;
  grid = patch_grid(s, d.granularity);
  geo.s = to_int(grid.s), geo.rows = to_int(grid.rows), geo.cols = to_int(grid.cols);
  geo.per_image = to_int(grid.per_image), geo.halo = to_int(grid.halo_extent);
  geo.offset = to_int(grid.halo_offset);
  geo.step = to_int(grid.input_step), geo.in_h = to_int(s.height), geo.in_w = to_int(s.width);
  geo.out_h = to_int(s.out_height()), geo.out_w = to_int(s.out_width());
  const int patches = to_int(s.batch) * geo.per_image;
  max_patches = patches;
  patch_logits = alloc<float>(patches);
  pixel_logits = alloc<float>(s.batch * s.height * s.width);
  pool_partials = alloc<float>(detail::masker_pool_partials(geo, to_int(s.batch)));
  mask = alloc<std::uint8_t>(patches);
  index = alloc<std::int32_t>(patches);
  count = alloc<std::int32_t>(1);
  cub_temp = alloc<char>(static_cast<long long>(detail::compaction_temp_bytes(patches)));
  calibrate_masker(x_at(0), d.density);
}

float* BlockRunner::Impl::add_se(float* conv2_rows, long long max_rows, bool patches) {
  const auto& s = cfg.shape;
  if (s.se_channels <= 0) return conv2_rows;
  se_out = alloc<float>(max_rows * s.mid_channels);
  detail::SeInput in;
  in.rows = conv2_rows, in.channels = to_int(s.mid_channels), in.batch = to_int(s.batch);
  in.pixels_per_image = s.out_height() * s.out_width();
  in.max_rows = max_rows;
  if (patches) in.index = index.get(), in.count = count.get(), in.g = geo;
  detail::SeWeights w;
  w.se = to_int(s.se_channels), w.w1 = wse1.get(), w.b1 = bse1.get(), w.w2 = wse2.get();
  w.b2 = bse2.get();
  se_scratch = alloc<float>(detail::se_pool_scratch(in));
  // Rows at the expected density: the pool and the scale each pass over them.
  const double rows =
      patches ? static_cast<double>(expected) * geo.s * geo.s : static_cast<double>(max_rows);
  const double c = static_cast<double>(s.mid_channels), r = static_cast<double>(s.se_channels);
  add_step("se", "se_pool+fc+scale", 2.0 * rows * c + 4.0 * s.batch * c * r,
           4.0 * (2.0 * rows * c + 2.0 * c * r), [this, in, w](cudaStream_t st, const float*) {
             detail::launch_se(in, w, se_scratch.get(), se_mean.get(), se_scale.get(), se_out.get(),
                               st);
           });
  return se_out.get();
}

void BlockRunner::Impl::build_basic_dense() {
  const auto& s = cfg.shape;
  const int h = to_int(s.height), w = to_int(s.width);
  const int ho = to_int(s.out_height()), wo = to_int(s.out_width());
  const int cin = to_int(s.in_channels), cmid = to_int(s.mid_channels),
            cout = to_int(s.out_channels);
  const long long px_in = s.batch * s.height * s.width,
                  px_out = s.batch * s.out_height() * s.out_width();
  const double f = 4.0;
  y1 = alloc<float>(px_out * cmid);
  add_shortcut();
  ConvArgs c1;
  c1.src_h = h, c1.src_w = w, c1.src_c = cin, c1.kh = c1.kw = 3, c1.stride = to_int(s.stride);
  c1.pad = 1, c1.cin_g = cin, c1.a_map = grid_map(px_out, ho, wo);
  c1.weight = w1.get(), c1.cout_g = cmid, c1.out = y1.get(), c1.out_c = cmid;
  c1.bias = b1.get(), c1.relu = 1;
  add_conv("conv1", c1, true, false, px_out, 2.0 * px_out * 9 * cin * cmid,
           f * (px_in * cin + 9.0 * cin * cmid + px_out * cmid));
  // conv2's epilogue adds the residual (the predictor's dense "add" is fused into it).
  ConvArgs c2;
  c2.src = y1.get(), c2.src_h = ho, c2.src_w = wo, c2.src_c = cmid, c2.kh = c2.kw = 3;
  c2.pad = 1, c2.cin_g = cmid, c2.a_map = grid_map(px_out, ho, wo);
  c2.weight = w2.get(), c2.cout_g = cout, c2.out = out.get(), c2.out_c = cout;
  c2.bias = b2.get(), c2.residual = s.has_projection() ? sc.get() : nullptr, c2.relu = 1;
  const double flops2 = 2.0 * px_out * 9 * cmid * cout,
               bytes2 = f * (px_out * cmid + 9.0 * cmid * cout + 2.0 * px_out * cout);
  const bool tf32 = cfg.precision == Precision::tf32;
  // The bottleneck's rule for its dense conv2 (which the profiler's planned kernel follows).
  if (!cfg.im2col_conv2.value_or(
          kernels::im2col_library_conv(detail::shape_of(c2, px_out), tf32))) {
    add_conv("conv2", c2, false, !s.has_projection(), px_out, flops2, bytes2);
    return;
  }
  if (cmid % 4 != 0) throw lasnet::Error("BlockRunner: im2col conv2 needs channels in fours");
  col = alloc<float>(px_out * 9 * cmid);
  auto& ws = ctx->workspace;
  gemms.push_back(std::make_unique<LtGemm>(ctx->lt, tf32, px_out, 9ULL * cmid, cout, b2.get(), true,
                                           true, ws.bytes(), !cfg.library_first_pick));
  const LtGemm* g = gemms.back().get();
  cublasLtHandle_t lt = ctx->lt;
  float* wptr = w2.get();
  float* cptr = col.get();
  float* optr = out.get();
  const float* scp = s.has_projection() ? sc.get() : nullptr;
  add_step("conv2", "im2col+cublaslt", flops2, bytes2,
           [c2, g, lt, wptr, cptr, optr, scp, &ws](cudaStream_t st, const float* xp) {
             detail::launch_im2col(c2, cptr, st);
             g->run(lt, wptr, cptr, scp != nullptr ? scp : xp, optr, ws.get(), ws.bytes(), st);
           });
}

// The basic block on active patches: conv1 computes each patch plus a 1-pixel halo ((S+2)^2
// outputs, zero outside the map, reading x on E^2 = ((S+1)*stride+3)^2 pixels, gathered or
// through the index list), conv2 the patch from conv1's patch buffer, and its rows are added
// into the residual (its own epilogue, or the scatter-add).
void BlockRunner::Impl::build_basic_dynamic() {
  const auto& s = cfg.shape;
  const Fusion fu = cfg.dynamic->fusion;
  const int n = to_int(s.batch), h = to_int(s.height), w = to_int(s.width);
  const int ho = to_int(s.out_height()), wo = to_int(s.out_width());
  const int cin = to_int(s.in_channels), cmid = to_int(s.mid_channels),
            cout = to_int(s.out_channels);
  const long long px_out = s.batch * s.out_height() * s.out_width();
  init_masker();
  const int S = geo.s, E = geo.halo, M = to_int(grid.mid_extent);
  const int patches = n * geo.per_image;
  const double f = 4.0;
  const double p_exp = static_cast<double>(expected);
  const long long rows_mid = max_patches * M * M, rows_patch = max_patches * S * S;
  const long long hint_mid = expected * M * M, hint_patch = expected * S * S;
  const double act_px = std::min(p_exp * S * S, static_cast<double>(px_out));

  RowMap mid_map;  // conv1's outputs: M x M per patch, origin py*S - 1 in the output map
  mid_map.kind = RowMap::patch, mid_map.index = index.get(), mid_map.count = count.get();
  mid_map.prow = geo.rows, mid_map.pcol = geo.cols, mid_map.r = M, mid_map.pstride = S;
  mid_map.poff = -1, mid_map.lim_h = ho, mid_map.lim_w = wo;
  mid_map.rows_max = rows_mid, mid_map.unit = M * M;
  RowMap out_map = mid_map;  // the patch outputs: S x S per patch, origin py*S
  out_map.r = S, out_map.poff = 0, out_map.rows_max = rows_patch, out_map.unit = S * S;

  add_shortcut();
  const bool one_kernel =
      !cfg.cub_mask_select && detail::fused_masker_select(patches, 1LL * n * h * w);
  add_step("masker", one_kernel ? "pixel_logits+pool_select" : "pixel_logits+pool+cub_select",
           2.0 * n * h * w * cin, f * (1.0 * n * h * w * cin + 2.0 * patches),
           [this, n, cin, one_kernel, forced_mask = forced.empty() ? nullptr : forced.get()](
               cudaStream_t st, const float* xp) {
             detail::launch_pixel_logits(xp, n, cin, wm.get(), geo, pixel_logits.get(), st);
             detail::launch_masker_select(pixel_logits.get(), n, bm, geo, forced_mask,
                                          pool_partials.get(), patch_logits.get(), mask.get(),
                                          index.get(), count.get(), cub_temp.get(),
                                          cub_temp.bytes(), one_kernel, st);
           });

  g1 = alloc<float>(rows_mid * cmid);
  ConvArgs c1;
  c1.src_c = cin, c1.kh = c1.kw = 3, c1.stride = to_int(s.stride), c1.cin_g = cin;
  c1.weight = w1.get(), c1.cout_g = cmid, c1.out = g1.get(), c1.out_c = cmid;
  c1.bias = b1.get(), c1.relu = 1, c1.e_mode = ConvArgs::zero_outside, c1.e_map = mid_map;
  const double f1 = 2.0 * p_exp * M * M * 9 * cin * cmid;
  const double bytes1 = f * (p_exp * E * E * cin + 9.0 * cin * cmid + p_exp * M * M * cmid);
  if (fu.gather_conv1) {
    c1.src_h = h, c1.src_w = w, c1.pad = 1, c1.a_map = mid_map;
    add_conv("conv1", c1, true, false, hint_mid, f1, bytes1);
  } else {
    gx = alloc<float>(max_patches * E * E * cin);
    add_step("gather", "gather", 0, f * 2.0 * p_exp * E * E * cin,
             [this, cin](cudaStream_t st, const float* xp) {
               detail::launch_gather(xp, cin, index.get(), count.get(), max_patches, geo, gx.get(),
                                     st);
             });
    c1.src = gx.get(), c1.src_h = E, c1.src_w = E, c1.pad = 0;
    c1.a_map = grid_map(rows_mid, M, M);
    c1.a_map.count = count.get(), c1.a_map.unit = M * M;
    add_conv("conv1", c1, false, false, hint_mid, f1, bytes1);
  }

  const bool res_is_x = !s.has_projection();
  const float* res = res_is_x ? nullptr : sc.get();
  ConvArgs c2;
  c2.src = g1.get(), c2.src_h = M, c2.src_w = M, c2.src_c = cmid, c2.kh = c2.kw = 3;
  c2.cin_g = cmid, c2.a_map = grid_map(rows_patch, S, S);
  c2.a_map.count = count.get(), c2.a_map.unit = S * S;
  c2.weight = w2.get(), c2.cout_g = cout, c2.bias = b2.get();
  const double f2 = 2.0 * act_px * 9 * cmid * cout;
  if (fu.conv3_scatter_add) {
    c2.e_mode = ConvArgs::scatter, c2.e_map = out_map;
    c2.out = out.get(), c2.out_c = cout, c2.out_h = ho, c2.out_w = wo;
    c2.residual = res, c2.relu = 1;
    add_conv("conv2", c2, false, res_is_x, hint_patch, f2,
             f * (p_exp * M * M * cmid + 9.0 * cmid * cout + 2.0 * act_px * cout), in_place);
  } else {
    g2 = alloc<float>(rows_patch * cout);
    c2.out = g2.get(), c2.out_c = cout;
    add_conv("conv2", c2, false, false, hint_patch, f2,
             f * (p_exp * M * M * cmid + 9.0 * cmid * cout + p_exp * S * S * cout));
    add_step("scatter_add", "scatter_add", act_px * cout,
             f * (p_exp * S * S * cout + 2.0 * act_px * cout),
             [this, cout, res](cudaStream_t st, float* xp) {
               detail::launch_scatter_add(g2.get(), cout, index.get(), count.get(), max_patches,
                                          geo, res != nullptr ? res : xp, in_place ? xp : out.get(),
                                          st);
             });
  }
  if (in_place) return;
  const double inactive_px = std::max(0.0, static_cast<double>(px_out) - act_px);
  add_step("add", "add_inactive", inactive_px * cout, f * (2.0 * inactive_px * cout + patches),
           [this, n, cout, res](cudaStream_t st, const float* xp) {
             detail::launch_add_inactive(mask.get(), n, cout, geo, res != nullptr ? res : xp,
                                         out.get(), st);
           });
}

void BlockRunner::Impl::build_dense() {
  const auto& s = cfg.shape;
  const bool tf32 = cfg.precision == Precision::tf32;
  const int n = to_int(s.batch), h = to_int(s.height), w = to_int(s.width);
  const int ho = to_int(s.out_height()), wo = to_int(s.out_width());
  const int cin = to_int(s.in_channels), cmid = to_int(s.mid_channels),
            cout = to_int(s.out_channels);
  const long long px_in = static_cast<long long>(n) * h * w,
                  px_out = static_cast<long long>(n) * ho * wo;
  const bool conv1 = !s.separable();  // a separable block's conv2 reads x
  if (conv1) y1 = alloc<float>(px_in * cmid);
  y2 = alloc<float>(px_out * cmid);
  const double f = 4.0;  // bytes per element

  add_shortcut();
  // conv1 and conv3: cuBLASLt GEMMs with bias + ReLU (+ residual) epilogues, or our implicit
  // GEMM where library_1x1_conv says so.
  ConvArgs c1;
  c1.src_h = h, c1.src_w = w, c1.src_c = cin, c1.cin_g = cin, c1.a_map = grid_map(px_in, h, w);
  c1.weight = w1.get(), c1.cout_g = cmid, c1.out = y1.get(), c1.out_c = cmid;
  c1.bias = b1.get(), c1.relu = 1;
  ConvArgs c3;
  c3.src = y2.get(), c3.src_h = ho, c3.src_w = wo, c3.src_c = cmid, c3.cin_g = cmid;
  c3.a_map = grid_map(px_out, ho, wo);
  c3.weight = w3.get(), c3.cout_g = cout, c3.out = out.get(), c3.out_c = cout;
  c3.bias = b3.get(), c3.residual = s.has_projection() ? sc.get() : nullptr, c3.relu = 1;
  const auto use_library = [&](const ConvArgs& a, long long rows) {
    return cfg.library_1x1.value_or(kernels::library_1x1_conv(detail::shape_of(a, rows), tf32));
  };
  const double conv1_flops = 2.0 * px_in * cin * cmid,
               conv1_bytes = f * (px_in * cin + 1.0 * cin * cmid + px_in * cmid);
  if (conv1 && !use_library(c1, px_in)) {
    add_conv("conv1", c1, true, false, px_in, conv1_flops, conv1_bytes);
  } else if (conv1) {
    auto& ws = ctx->workspace;
    gemms.push_back(std::make_unique<LtGemm>(ctx->lt, tf32, px_in, cin, cmid, b1.get(), true, false,
                                             ws.bytes(), !cfg.library_first_pick));
    const LtGemm* g = gemms.back().get();
    cublasLtHandle_t lt = ctx->lt;
    float* wptr = w1.get();
    float* yptr = y1.get();
    add_step("conv1", "cublaslt", conv1_flops, conv1_bytes,
             [g, lt, wptr, yptr, &ws](cudaStream_t st, const float* xp) {
               g->run(lt, wptr, xp, nullptr, yptr, ws.get(), ws.bytes(), st);
             });
  }
  {
    ConvArgs a;
    a.src = y1.get(), a.src_h = h, a.src_w = w, a.src_c = cmid;
    a.kh = a.kw = 3, a.stride = to_int(s.stride), a.pad = 1;
    a.groups = to_int(s.groups), a.cin_g = cmid / a.groups;
    a.a_map = grid_map(px_out, ho, wo);
    a.weight = w2.get(), a.cout_g = cmid / a.groups, a.out = y2.get(), a.out_c = cmid;
    a.bias = b2.get(), a.relu = 1;
    const double flops = 2.0 * px_out * cmid * 9 * a.cin_g;
    const double bytes = f * (px_in * cmid + 9.0 * cmid * a.cin_g + px_out * cmid);
    const bool library =
        cfg.im2col_conv2.value_or(kernels::im2col_library_conv(detail::shape_of(a, px_out), tf32));
    if (!library) {
      add_conv("conv2", a, !conv1, false, px_out, flops, bytes);
    } else {
      if (a.groups != 1 || a.cin_g % 4 != 0) {
        throw lasnet::Error("BlockRunner: im2col conv2 needs one group and channels in fours");
      }
      const long long k2 = 9LL * cmid;
      col = alloc<float>(px_out * k2);
      auto& ws = ctx->workspace;
      gemms.push_back(std::make_unique<LtGemm>(ctx->lt, tf32, px_out, k2, cmid, b2.get(), true,
                                               false, ws.bytes(), !cfg.library_first_pick));
      const LtGemm* g = gemms.back().get();
      cublasLtHandle_t lt = ctx->lt;
      float* wptr = w2.get();
      float* cptr = col.get();
      float* yptr = y2.get();
      // The floor stays the conv's own bytes: the copy of the taps is this form's overhead.
      add_step("conv2", "im2col+cublaslt", flops, bytes,
               [a, conv1, g, lt, wptr, cptr, yptr, &ws](cudaStream_t st, const float* xp) {
                 ConvArgs in = a;
                 if (!conv1) in.src = xp;
                 detail::launch_im2col(in, cptr, st);
                 g->run(lt, wptr, cptr, nullptr, yptr, ws.get(), ws.bytes(), st);
               });
    }
  }
  c3.src = add_se(y2.get(), px_out, false);
  const double conv3_flops = 2.0 * px_out * cmid * cout,
               conv3_bytes = f * (px_out * cmid + 1.0 * cmid * cout + 2.0 * px_out * cout);
  if (!use_library(c3, px_out)) {
    add_conv("conv3", c3, false, !s.has_projection(), px_out, conv3_flops, conv3_bytes);
  } else {
    auto& ws = ctx->workspace;
    gemms.push_back(std::make_unique<LtGemm>(ctx->lt, tf32, px_out, cmid, cout, b3.get(), true,
                                             true, ws.bytes(), !cfg.library_first_pick));
    const LtGemm* g = gemms.back().get();
    cublasLtHandle_t lt = ctx->lt;
    float* wptr = w3.get();
    const float* yptr = c3.src;
    float* optr = out.get();
    const float* scp = s.has_projection() ? sc.get() : nullptr;
    add_step("conv3", "cublaslt", conv3_flops, conv3_bytes,
             [g, lt, wptr, yptr, optr, scp, &ws](cudaStream_t st, const float* xp) {
               g->run(lt, wptr, yptr, scp != nullptr ? scp : xp, optr, ws.get(), ws.bytes(), st);
             });
  }
}

void BlockRunner::Impl::calibrate_masker(const void* input, double density) {
  const auto& s = cfg.shape;
  const auto& d = *cfg.dynamic;
  const int patches = to_int(s.batch * grid.per_image);
  if (!d.mask.empty() && forced.empty()) {
    forced = alloc<std::uint8_t>(patches);
    LASNET_CUDA_CHECK(
        cudaMemcpy(forced.get(), d.mask.data(), d.mask.size(), cudaMemcpyHostToDevice));
    expected = std::count_if(d.mask.begin(), d.mask.end(), [](std::uint8_t v) { return v != 0; });
  }
  // Logits with bias 0 (one host round trip, at setup only), then the bias for the density.
  LASNET_CUDA_CHECK(cudaDeviceSynchronize());
  if (half) {
    detail::launch_pixel_logits_as(static_cast<const __half*>(input), to_int(s.batch),
                                   to_int(s.in_channels), h.wm.get(), geo, pixel_logits.get(),
                                   nullptr);
    detail::launch_masker_pool(pixel_logits.get(), to_int(s.batch), 0.0f, geo, nullptr,
                               pool_partials.get(), patch_logits.get(), mask.get(), nullptr);
  } else {
    detail::launch_masker(static_cast<const float*>(input), to_int(s.batch), to_int(s.in_channels),
                          wm.get(), 0.0f, geo, nullptr, pixel_logits.get(), pool_partials.get(),
                          patch_logits.get(), mask.get(), nullptr);
  }
  std::vector<float> logits(static_cast<std::size_t>(patches));
  LASNET_CUDA_CHECK(cudaMemcpy(logits.data(), patch_logits.get(), logits.size() * sizeof(float),
                               cudaMemcpyDeviceToHost));
  if (d.mask.empty()) {
    bm = masker_bias_for_density(logits, density);
    expected =
        std::count_if(logits.begin(), logits.end(), [this](float v) { return v + bm > 0.0f; });
  }
  if (d.fusion.union_conv1) {  // the union conv1's row hint
    std::vector<std::uint8_t> m = d.mask;
    if (m.empty()) {
      m.resize(logits.size());
      for (std::size_t i = 0; i < m.size(); ++i) m[i] = logits[i] + bm > 0.0f ? 1 : 0;
    }
    expected_needed = static_cast<std::int64_t>(needed_conv1_pixels(s, grid.s, m).size());
  }
}

void BlockRunner::Impl::build_dynamic() {
  const auto& s = cfg.shape;
  const auto& d = *cfg.dynamic;
  const Fusion fu = d.fusion;
  const int n = to_int(s.batch), h = to_int(s.height), w = to_int(s.width);
  const int ho = to_int(s.out_height()), wo = to_int(s.out_width());
  const int cin = to_int(s.in_channels), cmid = to_int(s.mid_channels),
            cout = to_int(s.out_channels);
  const int stride = to_int(s.stride), groups = to_int(s.groups);
  const long long px_in = static_cast<long long>(n) * h * w,
                  px_out = static_cast<long long>(n) * ho * wo;
  init_masker();
  const int S = geo.s, E = geo.halo;
  const int patches = n * geo.per_image;

  const double f = 4.0;
  const double p_exp = static_cast<double>(expected);
  const long long rows_halo = max_patches * E * E, rows_patch = max_patches * S * S;
  const long long hint_halo = expected * E * E, hint_patch = expected * S * S;
  const double act_px =
      std::min(p_exp * S * S, static_cast<double>(px_out));  // approx. active outputs

  RowMap halo_map;  // rows of gathered conv2 inputs: E x E per patch, origin py*S*stride - 1
  halo_map.kind = RowMap::patch, halo_map.index = index.get(), halo_map.count = count.get();
  halo_map.prow = geo.rows, halo_map.pcol = geo.cols, halo_map.r = E, halo_map.pstride = geo.step;
  halo_map.poff = -1, halo_map.lim_h = h, halo_map.lim_w = w;
  halo_map.rows_max = rows_halo, halo_map.unit = E * E;
  RowMap out_map = halo_map;  // rows of patch outputs: S x S per patch, origin py*S
  out_map.r = S, out_map.pstride = S, out_map.poff = 0, out_map.lim_h = ho, out_map.lim_w = wo;
  out_map.rows_max = rows_patch, out_map.unit = S * S;
  RowMap patch_rows = grid_map(rows_patch, 1, 1);  // [P*S*S] contiguous rows
  patch_rows.count = count.get(), patch_rows.unit = S * S;

  add_shortcut();

  // Pool, threshold and compaction into the index list (one kernel for small patch counts).
  const bool one_kernel = !cfg.cub_mask_select && detail::fused_masker_select(patches, px_in);
  const auto pool_select = [this, n, one_kernel,
                            forced_mask =
                                forced.empty() ? nullptr : forced.get()](cudaStream_t st) {
    detail::launch_masker_select(pixel_logits.get(), n, bm, geo, forced_mask, pool_partials.get(),
                                 patch_logits.get(), mask.get(), index.get(), count.get(),
                                 cub_temp.get(), cub_temp.bytes(), one_kernel, st);
  };
  const std::string masker_kernel =
      one_kernel ? "pixel_logits+pool_select" : "pixel_logits+pool+cub_select";
  // The unfused masker step: per-pixel logits of x, then the pool and compaction.
  const auto add_masker = [&] {
    add_step("masker", masker_kernel, 2.0 * px_in * cin, f * (px_in * cin + 2.0 * patches),
             [this, n, cin, pool_select](cudaStream_t st, const float* xp) {
               detail::launch_pixel_logits(xp, n, cin, wm.get(), geo, pixel_logits.get(), st);
               pool_select(st);
             });
  };
  g2 = alloc<float>(rows_patch * cmid);
  // conv2 picks its halos out of a full map: conv1's (masker_conv1, union_conv1) or, in a
  // separable block (no conv1), x itself.
  const bool from_x = s.separable();
  if (from_x) add_masker();

  if (fu.masker_conv1 && d.library_conv1) {
    y1 = alloc<float>(px_in * cmid);
    add_masker();
    auto& ws = ctx->workspace;
    gemms.push_back(std::make_unique<LtGemm>(ctx->lt, cfg.precision == Precision::tf32, px_in, cin,
                                             cmid, b1.get(), true, false, ws.bytes(),
                                             !cfg.library_first_pick));
    const LtGemm* g = gemms.back().get();
    cublasLtHandle_t lt = ctx->lt;
    float* wptr = w1.get();
    float* yptr = y1.get();
    add_step("conv1", "cublaslt", 2.0 * px_in * cin * cmid,
             f * (px_in * cin + 1.0 * cin * cmid + px_in * cmid),
             [g, lt, wptr, yptr, &ws](cudaStream_t st, const float* xp) {
               g->run(lt, wptr, xp, nullptr, yptr, ws.get(), ws.bytes(), st);
             });
  } else if (fu.union_conv1) {
    // Masker as unfused; "dilate" lists the conv1 pixels the active patches' conv2 reads, and
    // conv1 runs once on each, into the full-size map, which conv2 then reads as with
    // masker_conv1 (pixels no active patch reads stay unwritten).
    add_masker();
    detail::DilateGeometry dg;
    dg.rows = geo.rows, dg.cols = geo.cols, dg.extent = E, dg.step = geo.step, dg.offset = -1;
    dg.map_h = h, dg.map_w = w;
    needed = alloc<std::int32_t>(px_in);
    needed_count = alloc<std::int32_t>(1);
    dilate_temp = alloc<char>(static_cast<long long>(detail::dilate_temp_bytes(n, dg)));
    const double needed_exp = static_cast<double>(expected_needed);
    // Each pixel tests up to ceil(E / step)^2 mask entries; writes 4 bytes per needed pixel.
    add_step("dilate", "dilate_select", 0, f * needed_exp + 1.0 * patches,
             [this, n, dg](cudaStream_t st, const float*) {
               detail::launch_dilate(mask.get(), n, dg, needed.get(), needed_count.get(),
                                     dilate_temp.get(), dilate_temp.bytes(), st);
             });
    y1 = alloc<float>(px_in * cmid);
    RowMap pixel_map;
    pixel_map.kind = RowMap::pixels, pixel_map.index = needed.get();
    pixel_map.count = needed_count.get(), pixel_map.unit = 1;
    pixel_map.gh = h, pixel_map.gw = w, pixel_map.rows_max = px_in;
    ConvArgs a;
    a.src_h = h, a.src_w = w, a.src_c = cin, a.cin_g = cin, a.a_map = pixel_map;
    a.weight = w1.get(), a.cout_g = cmid, a.bias = b1.get(), a.relu = 1;
    a.e_mode = ConvArgs::scatter, a.e_map = pixel_map;
    a.out = y1.get(), a.out_c = cmid, a.out_h = h, a.out_w = w;
    add_conv("conv1", a, true, false, std::max<long long>(expected_needed, 1),
             2.0 * needed_exp * cin * cmid,
             f * (needed_exp * (cin + cmid + 1.0) + 1.0 * cin * cmid));
  } else if (fu.masker_conv1) {
    y1 = alloc<float>(px_in * cmid);
    ConvArgs a;
    a.src_h = h, a.src_w = w, a.src_c = cin, a.cin_g = cin;
    a.a_map = grid_map(px_in, h, w);
    a.weight = w1.get(), a.cout_g = cmid, a.out = y1.get(), a.out_c = cmid;
    a.bias = b1.get(), a.relu = 1, a.aux = pixel_logits.get(), a.aux_weight = wm.get();
    add_conv("masker_conv", a, true, false, px_in, 2.0 * px_in * cin * (cmid + 1),
             f * (px_in * cin + (cmid + 1.0) * cin + px_in * (cmid + 1.0)));
    add_step("masker", one_kernel ? "masker_pool_select" : "masker_pool+cub_select",
             1.0 * px_in + 2.0 * patches, f * (px_in + 2.0 * patches),
             [pool_select](cudaStream_t st, const float*) { pool_select(st); });
  }
  if (from_x || fu.masker_conv1 || fu.union_conv1) {
    ConvArgs c2;
    c2.kh = c2.kw = 3, c2.stride = stride, c2.groups = groups, c2.cin_g = cmid / groups;
    c2.weight = w2.get(), c2.cout_g = cmid / groups, c2.out = g2.get(), c2.out_c = cmid;
    c2.bias = b2.get(), c2.relu = 1;
    const double f2 = 2.0 * act_px * cmid * 9 * c2.cin_g;
    if (fu.gather_conv1) {
      c2.src = y1.get(), c2.src_h = h, c2.src_w = w, c2.src_c = cmid, c2.pad = 1;
      c2.a_map = out_map;
      add_conv("conv2", c2, from_x, false, hint_patch, f2,
               f * (p_exp * E * E * cmid + 9.0 * cmid * c2.cin_g + p_exp * S * S * cmid));
    } else {
      // x's halos land where download() reports the gathered x; conv1's where it reports them.
      DeviceBuffer<float>& halos = from_x ? gx : g1;
      halos = alloc<float>(rows_halo * cmid);
      add_step("gather", "gather", 0, f * 2.0 * p_exp * E * E * cmid,
               [this, cmid, from_x, dst = halos.get()](cudaStream_t st, const float* xp) {
                 detail::launch_gather(from_x ? xp : y1.get(), cmid, index.get(), count.get(),
                                       max_patches, geo, dst, st);
               });
      c2.src = halos.get(), c2.src_h = E, c2.src_w = E, c2.src_c = cmid, c2.pad = 0;
      c2.a_map = grid_map(rows_patch, S, S);
      c2.a_map.count = count.get(), c2.a_map.unit = S * S;
      add_conv("conv2", c2, false, false, hint_patch, f2,
               f * (p_exp * E * E * cmid + 9.0 * cmid * c2.cin_g + p_exp * S * S * cmid));
    }
  } else {
    add_masker();
    g1 = alloc<float>(rows_halo * cmid);
    ConvArgs c1;
    c1.src_c = cin, c1.cin_g = cin, c1.weight = w1.get(), c1.cout_g = cmid;
    c1.out = g1.get(), c1.out_c = cmid, c1.bias = b1.get(), c1.relu = 1;
    c1.e_mode = ConvArgs::zero_outside, c1.e_map = halo_map;
    const double f1 = 2.0 * p_exp * E * E * cin * cmid;
    const double b1_bytes = f * (p_exp * E * E * (cin + cmid) + 1.0 * cin * cmid);
    if (fu.gather_conv1) {
      c1.src_h = h, c1.src_w = w, c1.a_map = halo_map;
      add_conv("conv1", c1, true, false, hint_halo, f1, b1_bytes);
    } else {
      gx = alloc<float>(rows_halo * cin);
      add_step("gather", "gather", 0, f * 2.0 * p_exp * E * E * cin,
               [this, cin](cudaStream_t st, const float* xp) {
                 detail::launch_gather(xp, cin, index.get(), count.get(), max_patches, geo,
                                       gx.get(), st);
               });
      c1.src = gx.get(), c1.src_h = 1, c1.src_w = 1;
      c1.a_map = grid_map(rows_halo, 1, 1);
      c1.a_map.count = count.get(), c1.a_map.unit = E * E;
      add_conv("conv1", c1, false, false, hint_halo, f1, b1_bytes);
    }
    ConvArgs c2;
    c2.src = g1.get(), c2.src_h = E, c2.src_w = E, c2.src_c = cmid;
    c2.kh = c2.kw = 3, c2.stride = stride, c2.groups = groups, c2.cin_g = cmid / groups;
    c2.a_map = grid_map(rows_patch, S, S);
    c2.a_map.count = count.get(), c2.a_map.unit = S * S;
    c2.weight = w2.get(), c2.cout_g = cmid / groups, c2.out = g2.get(), c2.out_c = cmid;
    c2.bias = b2.get(), c2.relu = 1;
    add_conv("conv2", c2, false, false, hint_patch, 2.0 * p_exp * S * S * cmid * 9 * c2.cin_g,
             f * (p_exp * E * E * cmid + 9.0 * cmid * c2.cin_g + p_exp * S * S * cmid));
  }

  const bool res_is_x = !s.has_projection();
  const float* res = res_is_x ? nullptr : sc.get();
  ConvArgs c3;
  c3.src = add_se(g2.get(), rows_patch, true);
  c3.src_c = cmid, c3.cin_g = cmid, c3.a_map = patch_rows;
  c3.weight = w3.get(), c3.cout_g = cout, c3.bias = b3.get();
  const double f3 = 2.0 * act_px * cmid * cout;
  if (fu.conv3_scatter_add) {
    c3.e_mode = ConvArgs::scatter, c3.e_map = out_map;
    c3.out = out.get(), c3.out_c = cout, c3.out_h = ho, c3.out_w = wo;
    c3.residual = res, c3.relu = 1;
    add_conv("conv3", c3, false, res_is_x, hint_patch, f3,
             f * (p_exp * S * S * cmid + 1.0 * cmid * cout + 2.0 * act_px * cout), in_place);
  } else {
    g3 = alloc<float>(rows_patch * cout);
    c3.out = g3.get(), c3.out_c = cout;
    add_conv("conv3", c3, false, false, hint_patch, f3,
             f * (p_exp * S * S * (cmid + cout) + 1.0 * cmid * cout));
    add_step("scatter_add", "scatter_add", act_px * cout,
             f * (p_exp * S * S * cout + 2.0 * act_px * cout),
             [this, cout, res](cudaStream_t st, float* xp) {
               // In place, each thread reads the residual element it then overwrites.
               detail::launch_scatter_add(g3.get(), cout, index.get(), count.get(), max_patches,
                                          geo, res != nullptr ? res : xp, in_place ? xp : out.get(),
                                          st);
             });
  }
  if (in_place) return;  // inactive pixels keep x, which is ReLU(x) for x >= 0
  const double inactive_px = std::max(0.0, static_cast<double>(px_out) - act_px);
  add_step("add", "add_inactive", inactive_px * cout, f * (2.0 * inactive_px * cout + patches),
           [this, n, cout, res](cudaStream_t st, const float* xp) {
             detail::launch_add_inactive(mask.get(), n, cout, geo, res != nullptr ? res : xp,
                                         out.get(), st);
           });
}

// ---------------------------------------------------------------------------------------------
// fp16: __half storage, fp32 sums. Every GEMM is cuBLASLt's (wgmma on Hopper), 3x3 convs as
// im2col + GEMM; our implicit GEMM, and so the gather and scatter fusions, are fp32/tf32 only.

void BlockRunner::Impl::init_half() {
  const auto& s = cfg.shape;
  const auto fill_half = [this](DeviceBuffer<__half>& buf, long long n, TensorId id,
                                std::int64_t copy = 0) {
    detail::fill_random_as(buf.get() + copy * n, n, cfg.seed, random_stream(id, copy),
                           random_scale(cfg.shape, id), nullptr, id == TensorId::x && in_place);
  };
  const auto make = [&](DeviceBuffer<__half>& buf, long long n, TensorId id) {
    buf = alloc<__half>(n);
    fill_half(buf, n, id);
  };
  h.x = alloc<__half>(x_elems * cfg.input_copies);
  for (std::int64_t c = 0; c < cfg.input_copies; ++c) fill_half(h.x, x_elems, TensorId::x, c);
  make(h.w1, s.mid_channels * s.in_channels, TensorId::w1);
  make(h.b1, s.mid_channels, TensorId::b1);
  make(h.w2, s.mid_channels * 9 * s.mid_channels, TensorId::w2);
  make(h.b2, s.mid_channels, TensorId::b2);
  make(h.w3, s.out_channels * s.mid_channels, TensorId::w3);
  make(h.b3, s.out_channels, TensorId::b3);
  make(h.wm, s.in_channels, TensorId::wm);
  if (s.has_projection()) {
    make(h.wsc, s.out_channels * s.in_channels, TensorId::wsc);
    make(h.bsc, s.out_channels, TensorId::bsc);
    h.sc = alloc<__half>(s.batch * s.out_height() * s.out_width() * s.out_channels);
  }
  if (!in_place) h.out = alloc<__half>(s.batch * s.out_height() * s.out_width() * s.out_channels);
}

const LtGemm* BlockRunner::Impl::half_gemm(long long rows, long long k, long long n,
                                           const __half* bias, bool relu, bool residual) {
  gemms.push_back(std::make_unique<LtGemm>(
      ctx->lt, CUBLAS_COMPUTE_32F, CUDA_R_16F, static_cast<std::uint64_t>(rows),
      static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(n), bias, relu, residual,
      ctx->workspace.bytes(), !cfg.library_first_pick));
  return gemms.back().get();
}

void BlockRunner::Impl::add_half_shortcut() {
  const auto& s = cfg.shape;
  if (!s.has_projection()) return;
  const int cin = to_int(s.in_channels), cout = to_int(s.out_channels);
  const long long px_out = s.batch * s.out_height() * s.out_width();
  const LtGemm* g = half_gemm(px_out, cin, cout, h.bsc.get(), false, false);
  const double f = 2.0;
  const double flops = 2.0 * px_out * cin * cout,
               bytes = f * (px_out * cin + 1.0 * cin * cout + px_out * cout);
  auto& ws = ctx->workspace;
  cublasLtHandle_t lt = ctx->lt;
  if (s.stride == 1) {
    add_step<__half>("shortcut", "cublaslt", flops, bytes,
                     [this, g, lt, &ws](cudaStream_t st, const __half* xp) {
                       g->run(lt, h.wsc.get(), xp, nullptr, h.sc.get(), ws.get(), ws.bytes(), st);
                     });
    return;
  }
  // The strided 1x1 conv reads every stride-th pixel: subsampled rows (a 1x1 im2col), then
  // the GEMM.
  detail::Im2colGeometry ig;
  ig.batch = to_int(s.batch), ig.h = to_int(s.height), ig.w = to_int(s.width), ig.channels = cin;
  ig.kernel = 1, ig.stride = to_int(s.stride), ig.pad = 0;
  ig.out_h = to_int(s.out_height()), ig.out_w = to_int(s.out_width());
  h.sc_col = alloc<__half>(px_out * cin);
  add_step<__half>("shortcut", "subsample+cublaslt", flops, bytes,
                   [this, g, lt, ig, &ws](cudaStream_t st, const __half* xp) {
                     detail::launch_im2col_as(xp, ig, h.sc_col.get(), st);
                     g->run(lt, h.wsc.get(), h.sc_col.get(), nullptr, h.sc.get(), ws.get(),
                            ws.bytes(), st);
                   });
}

void BlockRunner::Impl::build_half_dense() {
  const auto& s = cfg.shape;
  const int n = to_int(s.batch), hh = to_int(s.height), w = to_int(s.width);
  const int cin = to_int(s.in_channels), cmid = to_int(s.mid_channels),
            cout = to_int(s.out_channels);
  const long long px_in = static_cast<long long>(n) * hh * w,
                  px_out = s.batch * s.out_height() * s.out_width();
  const double f = 2.0;  // bytes per element
  h.y1 = alloc<__half>(px_in * cmid);
  h.y2 = alloc<__half>(px_out * cmid);
  h.col = alloc<__half>(px_out * 9 * cmid);
  auto& ws = ctx->workspace;
  cublasLtHandle_t lt = ctx->lt;
  add_half_shortcut();
  const LtGemm* g1 = half_gemm(px_in, cin, cmid, h.b1.get(), true, false);
  add_step<__half>("conv1", "cublaslt", 2.0 * px_in * cin * cmid,
                   f * (px_in * cin + 1.0 * cin * cmid + px_in * cmid),
                   [this, g1, lt, &ws](cudaStream_t st, const __half* xp) {
                     g1->run(lt, h.w1.get(), xp, nullptr, h.y1.get(), ws.get(), ws.bytes(), st);
                   });
  detail::Im2colGeometry ig;
  ig.batch = n, ig.h = hh, ig.w = w, ig.channels = cmid, ig.kernel = 3, ig.pad = 1;
  ig.stride = to_int(s.stride), ig.out_h = to_int(s.out_height()), ig.out_w = to_int(s.out_width());
  const LtGemm* g2 = half_gemm(px_out, 9LL * cmid, cmid, h.b2.get(), true, false);
  add_step<__half>("conv2", "im2col+cublaslt", 2.0 * px_out * cmid * 9 * cmid,
                   f * (px_in * cmid + 9.0 * cmid * cmid + px_out * cmid),
                   [this, g2, lt, ig, &ws](cudaStream_t st, const __half*) {
                     detail::launch_im2col_as(h.y1.get(), ig, h.col.get(), st);
                     g2->run(lt, h.w2.get(), h.col.get(), nullptr, h.y2.get(), ws.get(), ws.bytes(),
                             st);
                   });
  const LtGemm* g3 = half_gemm(px_out, cmid, cout, h.b3.get(), true, true);
  add_step<__half>("conv3", "cublaslt", 2.0 * px_out * cmid * cout,
                   f * (px_out * cmid + 1.0 * cmid * cout + 2.0 * px_out * cout),
                   [this, g3, lt, &ws](cudaStream_t st, const __half* xp) {
                     const __half* res = h.sc.empty() ? xp : h.sc.get();
                     g3->run(lt, h.w3.get(), h.y2.get(), res, h.out.get(), ws.get(), ws.bytes(),
                             st);
                   });
}

// The dynamic bottleneck in fp16. The GEMMs over patch rows run as our fp16 implicit GEMM
// (conv_f16.cuh), which reads the device-side patch count and stops there, with the gather and
// scatter fusions as in fp32. cuBLASLt plans a GEMM for a host-known row count, so with
// `fp16_library_dynamic` (the previous path, kept as a benchmark baseline) each such GEMM runs
// over the mask's capacity (every patch active): correct at any mask, but the rows past the
// count are wasted work (docs/kernels.md, "fp16").
void BlockRunner::Impl::build_half_dynamic() {
  const auto& s = cfg.shape;
  const Fusion fu = cfg.dynamic->fusion;
  const bool lib = cfg.fp16_library_dynamic;
  const int n = to_int(s.batch), hh = to_int(s.height), w = to_int(s.width);
  const int ho = to_int(s.out_height()), wo = to_int(s.out_width());
  const int cin = to_int(s.in_channels), cmid = to_int(s.mid_channels),
            cout = to_int(s.out_channels);
  const int stride = to_int(s.stride);
  const long long px_in = static_cast<long long>(n) * hh * w,
                  px_out = s.batch * s.out_height() * s.out_width();
  init_masker();
  const int S = geo.s, E = geo.halo;
  const int patches = n * geo.per_image;
  const double f = 2.0;
  const double p_exp = static_cast<double>(expected);
  const long long rows_halo = max_patches * E * E, rows_patch = max_patches * S * S;
  const long long hint_halo = expected * E * E, hint_patch = expected * S * S;
  const double act_px = std::min(p_exp * S * S, static_cast<double>(px_out));
  auto& ws = ctx->workspace;
  cublasLtHandle_t lt = ctx->lt;

  // Row maps as build_dynamic's: E x E halo rows per patch (origin py*S*stride - 1), S x S
  // output rows per patch, and contiguous patch rows up to the device-side count.
  RowMap halo_map;
  halo_map.kind = RowMap::patch, halo_map.index = index.get(), halo_map.count = count.get();
  halo_map.prow = geo.rows, halo_map.pcol = geo.cols, halo_map.r = E, halo_map.pstride = geo.step;
  halo_map.poff = -1, halo_map.lim_h = hh, halo_map.lim_w = w;
  halo_map.rows_max = rows_halo, halo_map.unit = E * E;
  RowMap out_map = halo_map;
  out_map.r = S, out_map.pstride = S, out_map.poff = 0, out_map.lim_h = ho, out_map.lim_w = wo;
  out_map.rows_max = rows_patch, out_map.unit = S * S;
  RowMap patch_rows = grid_map(rows_patch, 1, 1);
  patch_rows.count = count.get(), patch_rows.unit = S * S;
  // An implicit-GEMM step, split as fp16_igemm_splits says for `rows_hint` rows (the expected
  // count, as add_conv's); src / residual / out may be the block's input x (known per run).
  const auto add_igemm = [this](const std::string& name, detail::HalfConvArgs args,
                                long long rows_hint, bool src_is_x, bool residual_is_x,
                                bool out_is_x, double flops, double bytes) {
    args.splits = detail::plan_half_conv_splits(args, rows_hint, ctx->sm_count);
    if (const long long ws_floats = detail::splitk_workspace_floats(args); ws_floats > 0) {
      splitk.push_back(alloc<float>(ws_floats));
      args.partial = splitk.back().get();
    }
    add_step<__half>(name, kernels::fp16_igemm_kernel(args.splits), flops, bytes,
                     [args, src_is_x, residual_is_x, out_is_x](cudaStream_t st, __half* xp) {
                       detail::HalfConvArgs a = args;
                       if (src_is_x) a.src = xp;
                       if (residual_is_x) a.residual = xp;
                       // In place: each epilogue thread reads its residual element before it
                       // stores it, and patches do not overlap (as in fp32).
                       if (out_is_x) a.out = xp;
                       detail::launch_half_conv(a, st);
                     });
  };

  add_half_shortcut();
  const bool one_kernel = !cfg.cub_mask_select && detail::fused_masker_select(patches, px_in);
  add_step<__half>(
      "masker", one_kernel ? "pixel_logits+pool_select" : "pixel_logits+pool+cub_select",
      2.0 * px_in * cin, f * px_in * cin + 8.0 * patches,
      [this, n, cin, one_kernel, forced_mask = forced.empty() ? nullptr : forced.get()](
          cudaStream_t st, const __half* xp) {
        detail::launch_pixel_logits_as(xp, n, cin, h.wm.get(), geo, pixel_logits.get(), st);
        detail::launch_masker_select(
            pixel_logits.get(), n, bm, geo, forced_mask, pool_partials.get(), patch_logits.get(),
            mask.get(), index.get(), count.get(), cub_temp.get(), cub_temp.bytes(), one_kernel, st);
      });

  // conv1's halo rows (g1) unless conv2 reads the full-size conv1 map y1 through the index.
  const bool conv2_reads_y1 = (fu.masker_conv1 || fu.union_conv1) && fu.gather_conv1 && !lib;
  if (!conv2_reads_y1) h.g1 = alloc<__half>(rows_halo * cmid);
  if (fu.masker_conv1) {  // with library_conv1 (check_supported): conv1 dense, then gathered
    h.y1 = alloc<__half>(px_in * cmid);
    const LtGemm* g = half_gemm(px_in, cin, cmid, h.b1.get(), true, false);
    add_step<__half>("conv1", "cublaslt", 2.0 * px_in * cin * cmid,
                     f * (px_in * cin + 1.0 * cin * cmid + px_in * cmid),
                     [this, g, lt, &ws](cudaStream_t st, const __half* xp) {
                       g->run(lt, h.w1.get(), xp, nullptr, h.y1.get(), ws.get(), ws.bytes(), st);
                     });
  } else if (fu.union_conv1) {
    // "dilate" lists the conv1 pixels the active patches' conv2 reads; conv1 runs on them and
    // the rows land in the full-size conv1 map (the pixels no active patch reads stay
    // unwritten), which conv2's halos are read from.
    detail::DilateGeometry dg;
    dg.rows = geo.rows, dg.cols = geo.cols, dg.extent = E, dg.step = geo.step, dg.offset = -1;
    dg.map_h = hh, dg.map_w = w;
    needed = alloc<std::int32_t>(px_in);
    needed_count = alloc<std::int32_t>(1);
    dilate_temp = alloc<char>(static_cast<long long>(detail::dilate_temp_bytes(n, dg)));
    const double needed_exp = static_cast<double>(expected_needed);
    add_step<__half>("dilate", "dilate_select", 0, 4.0 * needed_exp + 1.0 * patches,
                     [this, n, dg](cudaStream_t st, const __half*) {
                       detail::launch_dilate(mask.get(), n, dg, needed.get(), needed_count.get(),
                                             dilate_temp.get(), dilate_temp.bytes(), st);
                     });
    h.y1 = alloc<__half>(px_in * cmid);
    if (lib) {
      h.needed_x = alloc<__half>(px_in * cin);
      h.needed_y1 = alloc<__half>(px_in * cmid);
      const LtGemm* g = half_gemm(px_in, cin, cmid, h.b1.get(), true, false);
      add_step<__half>("conv1", "pixel_gather+cublaslt+pixel_scatter",
                       2.0 * needed_exp * cin * cmid,
                       f * (needed_exp * (cin + cmid) + 1.0 * cin * cmid),
                       [this, g, lt, cin, cmid, px_in, &ws](cudaStream_t st, const __half* xp) {
                         detail::launch_pixel_gather_as(xp, cin, needed.get(), needed_count.get(),
                                                        px_in, h.needed_x.get(), st);
                         g->run(lt, h.w1.get(), h.needed_x.get(), nullptr, h.needed_y1.get(),
                                ws.get(), ws.bytes(), st);
                         detail::launch_pixel_scatter_as(h.needed_y1.get(), cmid, needed.get(),
                                                         needed_count.get(), px_in, h.y1.get(), st);
                       });
    } else {
      RowMap pixel_map;
      pixel_map.kind = RowMap::pixels, pixel_map.index = needed.get();
      pixel_map.count = needed_count.get(), pixel_map.unit = 1;
      pixel_map.gh = hh, pixel_map.gw = w, pixel_map.rows_max = px_in;
      detail::HalfConvArgs a;
      a.src_h = hh, a.src_w = w, a.src_c = cin, a.a_map = pixel_map;
      a.weight = h.w1.get(), a.cout = cmid, a.bias = h.b1.get(), a.relu = 1;
      a.e_mode = ConvArgs::scatter, a.e_map = pixel_map;
      a.out = h.y1.get(), a.out_c = cmid, a.out_h = hh, a.out_w = w;
      add_igemm("conv1", a, std::max<long long>(expected_needed, 1), true, false, false,
                2.0 * needed_exp * cin * cmid, f * (needed_exp * (cin + cmid) + 1.0 * cin * cmid));
    }
  } else if (lib) {
    h.gx = alloc<__half>(rows_halo * cin);
    add_step<__half>("gather", "gather", 0, f * 2.0 * p_exp * E * E * cin,
                     [this, cin](cudaStream_t st, const __half* xp) {
                       detail::launch_gather_as(xp, cin, index.get(), count.get(), max_patches, geo,
                                                h.gx.get(), st);
                     });
    // Rows outside the map get ReLU(b1) here, not 0: conv2's im2col zeroes them.
    const LtGemm* g = half_gemm(rows_halo, cin, cmid, h.b1.get(), true, false);
    add_step<__half>("conv1", "cublaslt", 2.0 * p_exp * E * E * cin * cmid,
                     f * (p_exp * E * E * (cin + cmid) + 1.0 * cin * cmid),
                     [this, g, lt, &ws](cudaStream_t st, const __half*) {
                       g->run(lt, h.w1.get(), h.gx.get(), nullptr, h.g1.get(), ws.get(), ws.bytes(),
                              st);
                     });
  } else {
    // conv1 per patch with its halo; rows outside the map are zeroed in the epilogue (conv2's
    // zero padding), since conv2 reads these rows directly.
    detail::HalfConvArgs c1;
    c1.src_c = cin, c1.weight = h.w1.get(), c1.cout = cmid;
    c1.out = h.g1.get(), c1.out_c = cmid, c1.bias = h.b1.get(), c1.relu = 1;
    c1.e_mode = ConvArgs::zero_outside, c1.e_map = halo_map;
    const double f1 = 2.0 * p_exp * E * E * cin * cmid;
    const double b1_bytes = f * (p_exp * E * E * (cin + cmid) + 1.0 * cin * cmid);
    if (fu.gather_conv1) {
      c1.src_h = hh, c1.src_w = w, c1.a_map = halo_map;
      add_igemm("conv1", c1, hint_halo, true, false, false, f1, b1_bytes);
    } else {
      h.gx = alloc<__half>(rows_halo * cin);
      add_step<__half>("gather", "gather", 0, f * 2.0 * p_exp * E * E * cin,
                       [this, cin](cudaStream_t st, const __half* xp) {
                         detail::launch_gather_as(xp, cin, index.get(), count.get(), max_patches,
                                                  geo, h.gx.get(), st);
                       });
      c1.src = h.gx.get(), c1.src_h = 1, c1.src_w = 1;
      c1.a_map = grid_map(rows_halo, 1, 1);
      c1.a_map.count = count.get(), c1.a_map.unit = E * E;
      add_igemm("conv1", c1, hint_halo, false, false, false, f1, b1_bytes);
    }
  }
  if ((fu.masker_conv1 || fu.union_conv1) && !conv2_reads_y1) {
    add_step<__half>("gather", "gather", 0, f * 2.0 * p_exp * E * E * cmid,
                     [this, cmid](cudaStream_t st, const __half*) {
                       detail::launch_gather_as(h.y1.get(), cmid, index.get(), count.get(),
                                                max_patches, geo, h.g1.get(), st);
                     });
  }
  h.g2 = alloc<__half>(rows_patch * cmid);
  const double f2 = 2.0 * act_px * cmid * 9 * cmid;
  const double b2_bytes = f * (p_exp * E * E * cmid + 9.0 * cmid * cmid + act_px * cmid);
  if (lib) {
    h.col = alloc<__half>(rows_patch * 9 * cmid);
    const LtGemm* g2 = half_gemm(rows_patch, 9LL * cmid, cmid, h.b2.get(), true, false);
    add_step<__half>(
        "conv2", "im2col+cublaslt", f2, b2_bytes,
        [this, g2, lt, cmid, stride, &ws](cudaStream_t st, const __half*) {
          detail::launch_patch_im2col_as(h.g1.get(), cmid, stride, index.get(), count.get(),
                                         max_patches, geo, h.col.get(), st);
          g2->run(lt, h.w2.get(), h.col.get(), nullptr, h.g2.get(), ws.get(), ws.bytes(), st);
        });
  } else {
    detail::HalfConvArgs c2;
    c2.kh = c2.kw = 3, c2.stride = stride, c2.src_c = cmid;
    c2.weight = h.w2.get(), c2.cout = cmid, c2.out = h.g2.get(), c2.out_c = cmid;
    c2.bias = h.b2.get(), c2.relu = 1;
    if (conv2_reads_y1) {  // taps of the full-size conv1 map, zero padding outside it
      c2.src = h.y1.get(), c2.src_h = hh, c2.src_w = w, c2.pad = 1, c2.a_map = out_map;
    } else {  // valid taps on each patch's E x E halo rows (zero outside the map already)
      c2.src = h.g1.get(), c2.src_h = E, c2.src_w = E, c2.pad = 0;
      c2.a_map = grid_map(rows_patch, S, S);
      c2.a_map.count = count.get(), c2.a_map.unit = S * S;
    }
    add_igemm("conv2", c2, hint_patch, false, false, false, f2, b2_bytes);
  }
  const double f3 = 2.0 * act_px * cmid * cout;
  if (fu.conv3_scatter_add) {  // check_supported: not with fp16_library_dynamic
    detail::HalfConvArgs c3;
    c3.src = h.g2.get(), c3.src_c = cmid, c3.a_map = patch_rows;
    c3.weight = h.w3.get(), c3.cout = cout, c3.bias = h.b3.get(), c3.relu = 1;
    c3.e_mode = ConvArgs::scatter, c3.e_map = out_map;
    c3.out = h.out.empty() ? nullptr : h.out.get(), c3.out_c = cout, c3.out_h = ho, c3.out_w = wo;
    const bool res_is_x = h.sc.empty();
    c3.residual = res_is_x ? nullptr : h.sc.get();
    add_igemm("conv3", c3, hint_patch, false, res_is_x, in_place, f3,
              f * (p_exp * S * S * cmid + 1.0 * cmid * cout + 2.0 * act_px * cout));
  } else {
    h.g3 = alloc<__half>(rows_patch * cout);
    const double b3_bytes = f * (p_exp * S * S * (cmid + cout) + 1.0 * cmid * cout);
    if (lib) {
      const LtGemm* g3 = half_gemm(rows_patch, cmid, cout, h.b3.get(), false, false);
      add_step<__half>(
          "conv3", "cublaslt", f3, b3_bytes, [this, g3, lt, &ws](cudaStream_t st, const __half*) {
            g3->run(lt, h.w3.get(), h.g2.get(), nullptr, h.g3.get(), ws.get(), ws.bytes(), st);
          });
    } else {
      detail::HalfConvArgs c3;
      c3.src = h.g2.get(), c3.src_c = cmid, c3.a_map = patch_rows;
      c3.weight = h.w3.get(), c3.cout = cout, c3.bias = h.b3.get();
      c3.out = h.g3.get(), c3.out_c = cout;
      add_igemm("conv3", c3, hint_patch, false, false, false, f3, b3_bytes);
    }
    add_step<__half>("scatter_add", "scatter_add", act_px * cout,
                     f * (p_exp * S * S * cout + 2.0 * act_px * cout),
                     [this, cout](cudaStream_t st, __half* xp) {
                       // In place, each thread reads the residual element it then overwrites.
                       const __half* res = h.sc.empty() ? xp : h.sc.get();
                       detail::launch_scatter_add_as(h.g3.get(), cout, index.get(), count.get(),
                                                     max_patches, geo, res,
                                                     in_place ? xp : h.out.get(), st);
                     });
  }
  if (in_place) return;  // inactive pixels keep x, which is ReLU(x) for x >= 0
  const double inactive_px = std::max(0.0, static_cast<double>(px_out) - act_px);
  add_step<__half>("add", "add_inactive", inactive_px * cout,
                   f * 2.0 * inactive_px * cout + 1.0 * patches,
                   [this, n, cout](cudaStream_t st, const __half* xp) {
                     const __half* res = h.sc.empty() ? xp : h.sc.get();
                     detail::launch_add_inactive_as(mask.get(), n, cout, geo, res, h.out.get(), st);
                   });
}

namespace {
template <class T>
std::vector<T> copy_back(const T* p, long long count) {
  std::vector<T> v(static_cast<std::size_t>(std::max(count, 0LL)));
  if (!v.empty()) {
    LASNET_CUDA_CHECK(cudaMemcpy(v.data(), p, v.size() * sizeof(T), cudaMemcpyDeviceToHost));
  }
  return v;
}
template <class T>
std::vector<T> copy_back(const DeviceBuffer<T>& b, long long count) {
  return copy_back(b.get(), count);
}
// fp16 buffers as float (exact: every half is a float).
std::vector<float> copy_back_float(const __half* p, long long count) {
  const std::vector<__half> v = copy_back(p, count);
  std::vector<float> out(v.size());
  std::transform(v.begin(), v.end(), out.begin(), [](__half e) { return __half2float(e); });
  return out;
}
std::vector<float> copy_back_float(const DeviceBuffer<__half>& b, long long count) {
  return copy_back_float(b.get(), count);
}
std::vector<float> copy_back_float(const DeviceBuffer<__half>& b) {
  return copy_back_float(b.get(), static_cast<long long>(b.size()));
}

// BlockRunner::download for an fp16 block: the same fields as the fp32 form it mirrors
// (conv1 dense with masker_conv1 / union_conv1, else the gathered rows).
BlockOutputs download_half(const BlockRunner::Impl& m);
}  // namespace

// ---------------------------------------------------------------------------------------------
BlockRunner::BlockRunner(Context& context, const BlockConfig& config)
    : impl_(std::make_unique<Impl>(context.impl(), config)) {}
BlockRunner::~BlockRunner() = default;
BlockRunner::BlockRunner(BlockRunner&&) noexcept = default;
BlockRunner& BlockRunner::operator=(BlockRunner&&) noexcept = default;

const BlockConfig& BlockRunner::config() const {
  return impl_->cfg;
}
float BlockRunner::masker_bias() const {
  return impl_->bm;
}
std::int64_t BlockRunner::expected_active() const {
  return impl_->expected;
}
const std::vector<StepInfo>& BlockRunner::steps() const {
  return impl_->infos;
}

void BlockRunner::run_step(std::size_t i, StreamHandle stream, std::int64_t input_index) {
  if (i >= impl_->steps.size())
    throw lasnet::Error("BlockRunner::run_step: no step " + std::to_string(i));
  const long long copy = input_index % impl_->cfg.input_copies;
  impl_->last_copy = copy;
  impl_->steps[i].launch(stream, impl_->x_at(copy));
}

void BlockRunner::restore_input(std::int64_t input_index, StreamHandle stream) {
  auto& m = *impl_;
  const std::int64_t copy = input_index % m.cfg.input_copies;
  if (m.half) {
    detail::fill_random_as(m.h.x.get() + copy * m.x_elems, m.x_elems, m.cfg.seed,
                           random_stream(TensorId::x, copy), random_scale(m.cfg.shape, TensorId::x),
                           stream, m.in_place);
  } else {
    detail::fill_random(m.x.get() + copy * m.x_elems, m.x_elems, m.cfg.seed,
                        random_stream(TensorId::x, copy), random_scale(m.cfg.shape, TensorId::x),
                        stream, m.in_place);
  }
  LASNET_CUDA_CHECK(cudaGetLastError());
}

void BlockRunner::run(StreamHandle stream, std::int64_t input_index) {
  for (std::size_t i = 0; i < impl_->steps.size(); ++i) run_step(i, stream, input_index);
}

void* BlockRunner::run_on(void* input, StreamHandle stream) {
  for (auto& st : impl_->steps) st.launch(stream, input);
  return output_of(input);
}

void BlockRunner::run_step_on(std::size_t i, void* input, StreamHandle stream) {
  if (i >= impl_->steps.size())
    throw lasnet::Error("BlockRunner::run_step_on: no step " + std::to_string(i));
  impl_->steps[i].launch(stream, input);
}

void* BlockRunner::output_of(void* input) const {
  return impl_->in_place ? input : impl_->out_ptr();
}

void BlockRunner::calibrate_masker(const void* input, double density) {
  if (!impl_->cfg.dynamic) throw lasnet::Error("BlockRunner::calibrate_masker: a dense block");
  impl_->calibrate_masker(input, density);
}

std::int64_t BlockRunner::active_patches() const {
  if (impl_->count.empty()) return 0;
  LASNET_CUDA_CHECK(cudaDeviceSynchronize());
  return copy_back(impl_->count, 1).front();
}

std::int64_t BlockRunner::total_patches() const {
  return impl_->cfg.dynamic ? impl_->max_patches : 0;
}

void BlockRunner::poison() {
  auto& m = *impl_;
  for (DeviceBuffer<float>* b : {&m.y1, &m.y2, &m.out, &m.sc, &m.pixel_logits, &m.patch_logits,
                                 &m.gx, &m.g1, &m.g2, &m.g3, &m.se_mean, &m.se_scale, &m.se_out}) {
    if (!b->empty()) LASNET_CUDA_CHECK(cudaMemset(b->get(), 0xFF, b->bytes()));  // NaN
  }
  for (DeviceBuffer<__half>* b :
       {&m.h.y1, &m.h.y2, &m.h.out, &m.h.sc, &m.h.sc_col, &m.h.gx, &m.h.g1, &m.h.g2, &m.h.g3,
        &m.h.col, &m.h.needed_x, &m.h.needed_y1}) {
    if (!b->empty()) LASNET_CUDA_CHECK(cudaMemset(b->get(), 0xFF, b->bytes()));  // NaN
  }
  // And the split-K workspaces: a slice some split block failed to write reaches the output as
  // NaN through the reduce pass.
  for (DeviceBuffer<float>& b : m.splitk) LASNET_CUDA_CHECK(cudaMemset(b.get(), 0xFF, b.bytes()));
  if (!m.mask.empty()) LASNET_CUDA_CHECK(cudaMemset(m.mask.get(), 0xFF, m.mask.bytes()));
  if (!m.index.empty()) LASNET_CUDA_CHECK(cudaMemset(m.index.get(), 0xFF, m.index.bytes()));
  if (!m.count.empty()) LASNET_CUDA_CHECK(cudaMemset(m.count.get(), 0, m.count.bytes()));
  if (!m.needed.empty()) LASNET_CUDA_CHECK(cudaMemset(m.needed.get(), 0xFF, m.needed.bytes()));
  if (!m.needed_count.empty()) {
    LASNET_CUDA_CHECK(cudaMemset(m.needed_count.get(), 0, m.needed_count.bytes()));
  }
  LASNET_CUDA_CHECK(cudaDeviceSynchronize());
}

namespace {
BlockOutputs download_half(const BlockRunner::Impl& m) {
  const auto& s = m.cfg.shape;
  const auto& h = m.h;
  BlockOutputs o;
  o.out = m.in_place ? copy_back_float(h.x.get() + m.last_copy * m.x_elems, m.x_elems)
                     : copy_back_float(h.out);
  if (!h.sc.empty()) o.shortcut = copy_back_float(h.sc);
  if (!m.cfg.dynamic) {
    o.conv1 = copy_back_float(h.y1);
    o.conv2 = copy_back_float(h.y2);
    return o;
  }
  const long long p = copy_back(m.count, 1).front();
  if (p < 0 || p > m.max_patches)
    throw lasnet::Error("BlockRunner: active patch count out of range");
  const long long e2 = static_cast<long long>(m.geo.halo) * m.geo.halo,
                  s2 = 1LL * m.geo.s * m.geo.s;
  o.patch_logits = copy_back(m.patch_logits, static_cast<long long>(m.patch_logits.size()));
  o.mask = copy_back(m.mask, static_cast<long long>(m.mask.size()));
  o.active = copy_back(m.index, p);
  if (!h.gx.empty()) o.gathered_x = copy_back_float(h.gx, p * e2 * s.in_channels);
  if (!m.needed_count.empty()) {
    const long long np = copy_back(m.needed_count, 1).front();
    if (np < 0 || np > static_cast<long long>(m.needed.size()))
      throw lasnet::Error("BlockRunner: needed conv1 pixel count out of range");
    o.needed_pixels = copy_back(m.needed, np);
  }
  if (!h.y1.empty()) {
    o.conv1 = copy_back_float(h.y1);
    // Without g1 conv2 read conv1's map through the index list (the gather fusion).
    if (!h.g1.empty()) o.gathered_conv1 = copy_back_float(h.g1, p * e2 * s.mid_channels);
  } else {
    o.conv1 = copy_back_float(h.g1, p * e2 * s.mid_channels);
  }
  o.conv2 = copy_back_float(h.g2, p * s2 * s.mid_channels);
  // Without g3 conv3 added into the output in its epilogue (the scatter fusion).
  if (!h.g3.empty()) o.conv3 = copy_back_float(h.g3, p * s2 * s.out_channels);
  return o;
}
}  // namespace

BlockOutputs BlockRunner::download() const {
  const auto& m = *impl_;
  const auto& s = m.cfg.shape;
  LASNET_CUDA_CHECK(cudaDeviceSynchronize());
  if (m.half) return download_half(m);
  BlockOutputs o;
  o.out = m.in_place ? copy_back(m.x.get() + m.last_copy * m.x_elems, m.x_elems)
                     : copy_back(m.out, static_cast<long long>(m.out.size()));
  if (!m.sc.empty()) o.shortcut = copy_back(m.sc, static_cast<long long>(m.sc.size()));
  if (!m.se_scale.empty()) {
    o.se_scale = copy_back(m.se_scale, static_cast<long long>(m.se_scale.size()));
  }
  if (!m.cfg.dynamic) {
    if (!m.se_out.empty()) o.se = copy_back(m.se_out, static_cast<long long>(m.se_out.size()));
    o.conv1 = copy_back(m.y1, static_cast<long long>(m.y1.size()));
    o.conv2 = copy_back(m.y2, static_cast<long long>(m.y2.size()));
    return o;
  }
  const long long p = copy_back(m.count, 1).front();
  if (p < 0 || p > m.max_patches)
    throw lasnet::Error("BlockRunner: active patch count out of range");
  const long long e2 = static_cast<long long>(m.geo.halo) * m.geo.halo,
                  s2 = 1LL * m.geo.s * m.geo.s;
  o.patch_logits = copy_back(m.patch_logits, static_cast<long long>(m.patch_logits.size()));
  o.mask = copy_back(m.mask, static_cast<long long>(m.mask.size()));
  o.active = copy_back(m.index, p);
  if (!m.gx.empty()) o.gathered_x = copy_back(m.gx, p * e2 * s.in_channels);
  const Fusion& fu = m.cfg.dynamic->fusion;
  if (s.basic()) {
    const long long m2 = m.grid.mid_extent * m.grid.mid_extent;
    o.conv1 = copy_back(m.g1, p * m2 * s.mid_channels);
    if (!m.g2.empty()) o.conv2 = copy_back(m.g2, p * s2 * s.out_channels);
    return o;
  }
  if (!m.needed_count.empty()) {
    const long long np = copy_back(m.needed_count, 1).front();
    if (np < 0 || np > static_cast<long long>(m.needed.size()))
      throw lasnet::Error("BlockRunner: needed conv1 pixel count out of range");
    o.needed_pixels = copy_back(m.needed, np);
  }
  if (fu.masker_conv1 || fu.union_conv1) {
    o.conv1 = copy_back(m.y1, static_cast<long long>(m.y1.size()));
    if (!m.g1.empty()) o.gathered_conv1 = copy_back(m.g1, p * e2 * s.mid_channels);
  } else if (!s.separable()) {
    o.conv1 = copy_back(m.g1, p * e2 * s.mid_channels);
  }
  o.conv2 = copy_back(m.g2, p * s2 * s.mid_channels);
  if (!m.se_out.empty()) o.se = copy_back(m.se_out, p * s2 * s.mid_channels);
  if (!m.g3.empty()) o.conv3 = copy_back(m.g3, p * s2 * s.out_channels);
  return o;
}

BlockData BlockRunner::host_data() const {
  BlockData d = make_block_data(impl_->cfg);
  d.bm = impl_->bm;
  return d;
}

}  // namespace lasnet::kernels
