// A vector that keeps its first N elements inside itself: the edge and epsilon lists of NFA
// states (nfa.h). Most states have one or two of each, and lazy DFAs build NFA states during mask
// walks, where a heap block per list (and its free when the grammar goes) was about 8 % of
// JSONSchemaBench mask time. Only what the builders use: push_back, back, size, indexing,
// iteration, assignment from a braced list. T must be trivially copyable.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>
#include <type_traits>

namespace sable::grammar {

template <class T, uint32_t N>
class SmallVector {
  static_assert(std::is_trivially_copyable_v<T> && N > 0);

 public:
  SmallVector() = default;
  SmallVector(std::initializer_list<T> list) { assign(list.begin(), list.size()); }
  SmallVector(const SmallVector& other) { assign(other.data(), other.size_); }
  SmallVector(SmallVector&& other) noexcept { take(other); }
  SmallVector& operator=(const SmallVector& other) {
    if (this != &other) assign(other.data(), other.size_);
    return *this;
  }
  SmallVector& operator=(SmallVector&& other) noexcept {
    if (this != &other) {
      release();
      take(other);
    }
    return *this;
  }
  SmallVector& operator=(std::initializer_list<T> list) {
    assign(list.begin(), list.size());
    return *this;
  }
  ~SmallVector() { release(); }

  uint32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* data() { return cap_ > N ? heap_ : inline_; }
  const T* data() const { return cap_ > N ? heap_ : inline_; }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }
  T& back() { return data()[size_ - 1]; }
  const T& back() const { return data()[size_ - 1]; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }

  void push_back(const T& value) {
    const T copy = value;  // (value may live in the block grow() frees)
    if (size_ == cap_) grow(cap_ * 2);
    data()[size_++] = copy;
  }
  void clear() { size_ = 0; }

 private:
  void grow(uint32_t cap) {
    T* block = static_cast<T*>(std::malloc(sizeof(T) * cap));
    if (!block) throw std::bad_alloc();
    std::memcpy(block, data(), sizeof(T) * size_);
    if (cap_ > N) std::free(heap_);
    heap_ = block;
    cap_ = cap;
  }
  void assign(const T* from, size_t n) {
    if (n > cap_) grow(static_cast<uint32_t>(n));
    std::memmove(data(), from, sizeof(T) * n);
    size_ = static_cast<uint32_t>(n);
  }
  void take(SmallVector& other) {
    size_ = other.size_;
    cap_ = other.cap_;
    if (other.cap_ > N) {
      heap_ = other.heap_;
    } else {
      std::memcpy(inline_, other.inline_, sizeof(T) * other.size_);
    }
    other.size_ = 0;
    other.cap_ = N;
  }
  void release() {
    if (cap_ > N) std::free(heap_);
    cap_ = N;
    size_ = 0;
  }

  union {
    T inline_[N];
    T* heap_;
  };
  uint32_t size_ = 0;
  uint32_t cap_ = N;  // > N: the elements live in heap_
};

}  // namespace sable::grammar
