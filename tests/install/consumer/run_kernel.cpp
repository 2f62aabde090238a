// One fully connected forward on the installed runtime: links the kernels and LIBXSMM.
#include <iostream>
#include <rematch/kernels/fc.hpp>

int main() {
  const rematch::kernels::Fc fc(rematch::kernels::FcDesc{.n = 4, .c = 8, .k = 8});
  std::cout << "fc kernels ready\n";
  return 0;
}
