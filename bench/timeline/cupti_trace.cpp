// A kernel timeline without Nsight Systems (the device machine has none): loaded with LD_PRELOAD
// into any CUDA program, it records every kernel's start and end on the GPU, its stream and, for
// kernels replayed from a CUDA graph, the graph and node, through CUPTI's activity API, and writes
// them at exit as tab-separated rows to $SABLE_TRACE (default /tmp/sable_trace.tsv). ncu times
// kernels one at a time; this shows which of two concurrent branches (a LoRA side stream and the
// base GEMM beside it) a decode step waits for. scripts/timeline_summary.py reads the file.
//
// Concurrent-kernel records keep kernels concurrent (the plain kernel kind would serialize them).
// Thread-safety: CUPTI calls the buffer callbacks from its own thread; rows are kept under a mutex.
#include <cupti.h>
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Row {
  uint64_t start = 0, end = 0;
  uint32_t stream = 0, graph = 0;
  uint64_t node = 0;
  int32_t grid = 0, block = 0;
  std::string name;
};

std::mutex g_mu;
std::vector<Row>* g_rows = nullptr;  // never freed: the destructor order at exit is not ours
constexpr size_t kBufferBytes = 16u << 20;

std::string short_name(const char* mangled) {
  if (mangled == nullptr) return "?";
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> d(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), &std::free);
  std::string s = status == 0 && d ? d.get() : mangled;
  // Drop "(anonymous namespace)::" and then the parameter list: the table stays readable.
  const std::string anon = "(anonymous namespace)::";
  for (size_t at = s.find(anon); at != std::string::npos; at = s.find(anon, at)) s.erase(at, anon.size());
  const size_t paren = s.find('(');
  if (paren != std::string::npos) s.resize(paren);
  for (char& c : s)
    if (c == '\t' || c == '\n') c = ' ';
  return s.size() > 90 ? s.substr(0, 90) : s;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer != nullptr ? kBufferBytes : 0;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* rec = nullptr;
  std::vector<Row> rows;
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
      rows.push_back({k->start, k->end, k->streamId, k->graphId, k->graphNodeId,
                      k->gridX * k->gridY * k->gridZ, k->blockX * k->blockY * k->blockZ,
                      short_name(k->name)});
    } else if (rec->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(rec);
      rows.push_back({m->start, m->end, m->streamId, m->graphId, m->graphNodeId, 0, 0, "memset"});
    } else if (rec->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(rec);
      rows.push_back({m->start, m->end, m->streamId, m->graphId, m->graphNodeId, 0, 0, "memcpy"});
    }
  }
  std::free(buffer);
  std::lock_guard<std::mutex> lock(g_mu);
  g_rows->insert(g_rows->end(), rows.begin(), rows.end());
}

__attribute__((constructor)) void trace_start() {
  g_rows = new std::vector<Row>();
  // SABLE_TRACE_COPIES=0: kernels only (v24 saw a 330 us gap after the graph's one memcpy node in
  // every traced decode step; tracing copies may be what makes it).
  const char* copies = std::getenv("SABLE_TRACE_COPIES");
  const bool with_copies = copies == nullptr || copies[0] != '0';
  if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS ||
      cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS ||
      (with_copies && (cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET) != CUPTI_SUCCESS ||
                       cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY) != CUPTI_SUCCESS)))
    std::fprintf(stderr, "sable trace: CUPTI activity tracing could not be enabled\n");
}

__attribute__((destructor)) void trace_stop() {
  cuptiActivityFlushAll(1);
  std::lock_guard<std::mutex> lock(g_mu);
  // A process that ran no kernel (a wrapper such as timeout, which exits after its child) leaves
  // the file alone.
  if (g_rows->empty()) return;
  const char* path = std::getenv("SABLE_TRACE");
  if (path == nullptr || path[0] == '\0') path = "/tmp/sable_trace.tsv";
  std::FILE* f = std::fopen(path, "w");
  if (f == nullptr) {
    std::fprintf(stderr, "sable trace: cannot write %s\n", path);
    return;
  }
  std::fprintf(f, "start_ns\tend_ns\tstream\tgraph\tnode\tgrid\tblock\tname\n");
  for (const Row& r : *g_rows)
    std::fprintf(f, "%llu\t%llu\t%u\t%u\t%llu\t%d\t%d\t%s\n",
                 static_cast<unsigned long long>(r.start), static_cast<unsigned long long>(r.end),
                 r.stream, r.graph, static_cast<unsigned long long>(r.node), r.grid, r.block,
                 r.name.c_str());
  std::fclose(f);
  std::fprintf(stderr, "sable trace: %zu records in %s\n", g_rows->size(), path);
}

}  // namespace
