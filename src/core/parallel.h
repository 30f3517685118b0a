// parallel_rows: split [0, rows) into contiguous chunks run on up to `threads` threads
// (0 = std::thread::hardware_concurrency()). Small jobs run inline: a thread costs more
// than resampling a few thousand pixels. Exceptions from `body` are rethrown.
#pragma once

#include <algorithm>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

namespace q3vl {

template <typename Body>
void parallel_rows(int rows, unsigned threads, Body&& body, int min_rows_per_thread = 64) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const int chunks = std::max(1, std::min<int>(static_cast<int>(threads), rows / std::max(1, min_rows_per_thread)));
  if (chunks <= 1) {
    body(0, rows);
    return;
  }
  std::vector<std::thread> workers;
  std::vector<std::exception_ptr> errors(chunks);
  for (int c = 1; c < chunks; ++c) {
    workers.emplace_back([&, c] {
      try {
        body(static_cast<int>(static_cast<long long>(rows) * c / chunks),
             static_cast<int>(static_cast<long long>(rows) * (c + 1) / chunks));
      } catch (...) {
        errors[c] = std::current_exception();
      }
    });
  }
  try {
    body(0, static_cast<int>(rows / chunks));
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& w : workers) w.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace q3vl
