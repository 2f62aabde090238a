#include "cli/exit_status.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>

namespace rematch::cli {

namespace {

std::terminate_handler previous = nullptr;

[[noreturn]] void on_terminate() {
  if (const std::exception_ptr current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const std::bad_alloc&) {
    } catch (const std::length_error&) {
    } catch (...) {
      previous();
      std::abort();
    }
    // No allocation here: memory is what ran out.
    const char prefix[] = "rematch: ";
    (void)!::write(STDERR_FILENO, prefix, sizeof prefix - 1);
    (void)!::write(STDERR_FILENO, out_of_memory_message, std::strlen(out_of_memory_message));
    (void)!::write(STDERR_FILENO, "\n", 1);
    ::_exit(exit_out_of_memory);
  }
  previous();
  std::abort();
}

}  // namespace

void install_out_of_memory_terminate_handler() { previous = std::set_terminate(on_terminate); }

}  // namespace rematch::cli
