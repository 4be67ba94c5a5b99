/** The guest boot harness: boot a microVM from a disk or a virtio-fs share and run a command. */
export { chooseAccelerator, detectAccelerator, type AcceleratorChoice } from "./accel.js";
export { bootGuest, type BootOptions, type BootResult } from "./boot.js";
export { guestCacheDir, testdataDir } from "./cache.js";
export { copyImage, convertToQcow2, createOverlay, makeExt4Image, referenceDisks, type ReferenceDisks } from "./disks.js";
export { GuestError, type GuestErrorCode } from "./errors.js";
export { fetchKernel, type GuestKernel } from "./kernel.js";
export type { Accelerator } from "./qemu.js";
export type { VirtiofsCache } from "./virtiofsd.js";
