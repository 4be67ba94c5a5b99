import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Tests drive qemu-img, e2fsck and real guests, so they get long
    // timeouts. Files run one at a time, so two heavy suites never share
    // the machine's cores.
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
