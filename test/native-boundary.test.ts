import { describe, expect, it } from "vitest";

import { NativeError } from "../src/errors.js";
import { callNative, native } from "../src/native/binding.js";

describe("native boundary", () => {
  it("loads the addon", () => {
    expect(native().version()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("turns a main-thread panic into an error", async () => {
    const call = callNative(() => native().panicForTest(false));
    await expect(call).rejects.toBeInstanceOf(NativeError);
    await expect(call).rejects.toMatchObject({ code: "ERR_NATIVE_PANIC" });
  });

  it("turns a thread-pool panic into a rejection", async () => {
    const call = callNative(() => native().panicForTest(true));
    await expect(call).rejects.toMatchObject({ code: "ERR_NATIVE_PANIC", message: /thread pool/ });
    // The process is still alive and the addon still responds.
    expect(native().version()).toMatch(/^\d/);
  });
});
