// Weight-read part of the load time of a safetensors checkpoint, cold and warm page cache (bench/
// NOTES.md "Load time"), for checkpoints too large to load whole on this machine (an 8B model is
// 32 GB as the CPU backend's fp32). It does what a load does with the files, without a device:
// open the checkpoint (index, headers, mmap), then read every tensor once as stored (the bytes a GPU
// load uploads) and once converted to fp32 (what the CPU backend keeps), tensor by tensor into one
// reused buffer. "Cold" first drops the checkpoint's pages with posix_fadvise(DONTNEED) (no root
// needed); mincore() reports how much was resident. --model-path goes through the model resolver.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/model_source/resolve_model.h"
#include "core/weights/checkpoint.h"
#include "sable/tensor.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Fraction of the file's pages in the page cache.
double resident_fraction(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return -1;
  const off_t size = ::lseek(fd, 0, SEEK_END);
  void* map = size > 0 ? ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  double frac = -1;
  if (map != MAP_FAILED) {
    const long page = ::sysconf(_SC_PAGESIZE);
    std::vector<unsigned char> vec((size + page - 1) / page);
    if (::mincore(map, size, vec.data()) == 0) {
      size_t in = 0;
      for (unsigned char v : vec) in += v & 1;
      frac = static_cast<double>(in) / static_cast<double>(vec.size());
    }
    ::munmap(map, size);
  }
  ::close(fd);
  return frac;
}

void evict(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Weight-load time of a safetensors checkpoint, cold and warm page cache");
  std::string model, result_file = "bench/results/load_time.jsonl", tag;
  bool cold = false;
  app.add_option("--model-path", model, "Checkpoint folder or Hub id")->required();
  app.add_flag("--cold", cold, "Drop the checkpoint's pages from the page cache first");
  app.add_option("--result-file", result_file, "JSONL file the result line is appended to");
  app.add_option("--tag", tag, "Free text stored with the result");
  CLI11_PARSE(app, argc, argv);

  const auto source = sable::model_source::resolve_model(model);
  auto t = Clock::now();
  auto ckpt = sable::weights::Checkpoint::open(source.path);
  const double open_s = since(t);
  uint64_t bytes = 0;
  double resident = 0;
  for (const auto& f : ckpt->files()) {
    if (cold) evict(f->path().string());
    resident += resident_fraction(f->path().string()) / static_cast<double>(ckpt->files().size());
  }
  for (const auto& name : ckpt->names()) bytes += ckpt->at(name).nbytes;

  std::vector<char> buffer;
  t = Clock::now();
  for (const auto& name : ckpt->names()) {  // as stored: the bytes a GPU load copies
    const auto& info = ckpt->at(name);
    buffer.resize(info.nbytes);
    ckpt->read(info, info.dtype, -1, 0, 0, buffer.data());
  }
  const double stored_s = since(t);
  t = Clock::now();
  for (const auto& name : ckpt->names()) {  // converted to fp32: the CPU backend's weights
    const auto& info = ckpt->at(name);
    buffer.resize(static_cast<size_t>(info.numel()) * 4);
    ckpt->read(info, SABLE_DTYPE_F32, -1, 0, 0, buffer.data());
  }
  const double f32_s = since(t);

  const double gb = static_cast<double>(bytes) / 1e9;
  std::printf("%s: %zu tensors, %.2f GB in %zu files; page cache %s (%.0f%% resident before)\n",
              source.path.string().c_str(), ckpt->size(), gb, ckpt->files().size(),
              cold ? "cold" : "warm", resident * 100);
  std::printf("open %.3f s | read as stored %.2f s (%.2f GB/s) | read as fp32 %.2f s (%.2f GB/s)\n",
              open_s, stored_s, gb / stored_s, f32_s, gb / f32_s);
  nlohmann::json line = {{"bench", "load_time"}, {"model_path", model}, {"cache", cold ? "cold" : "warm"},
                         {"resident_before", resident}, {"gb", gb}, {"tensors", ckpt->size()},
                         {"files", ckpt->files().size()}, {"open_s", open_s},
                         {"read_stored_s", stored_s}, {"read_f32_s", f32_s}, {"tag", tag}};
  std::ofstream(result_file, std::ios::app) << line.dump() << "\n";
  return 0;
}
