// main() for test binaries with child roles (child_process.hpp): the role
// argv names, or the GoogleTest tests.
#include <gtest/gtest.h>

#include "child_process.hpp"

int main(int argc, char** argv) {
  if (auto status = memlink::shm::test::run_child_role(argc, argv)) return *status;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
