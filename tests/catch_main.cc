// Catch2's main, after exporting the build's paths to the environment
// ($RECMAP_TOOL, $RECMAP_SOURCE_DIR, $RECMAP_BINARY_DIR) unless the caller
// set them, so tests and the programs they spawn find the built tools.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdlib>

int main(int argc, char* argv[]) {
  ::setenv("RECMAP_TOOL", RECMAP_TOOL_PATH, /*overwrite=*/0);
  ::setenv("RECMAP_SOURCE_DIR", RECMAP_SOURCE_PATH, 0);
  ::setenv("RECMAP_BINARY_DIR", RECMAP_BINARY_PATH, 0);
  return Catch::Session().run(argc, argv);
}
