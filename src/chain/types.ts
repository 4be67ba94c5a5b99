/** Types shared by createChain, the layer conversion worker and the CLI. */

import type { ContainerConfig } from "../image/types.js";

export interface ChainResult {
  /** The reference as given. */
  reference: string;
  /** `os/arch[/variant]` of the image used. */
  platform: string;
  /** Path of the new writable qcow2 overlay: the guest's root disk. */
  disk: string;
  /** Store id of the overlay, for `resetOverlay` and `deleteOverlay`. */
  overlayId: string;
  /** Layer files, bottom to top; the overlay's backing chain. */
  chain: string[];
  /** Chain IDs of the layers, bottom to top. */
  chainIds: string[];
  /** Entrypoint, Cmd, Env, WorkingDir, User and the rest of the image config's `config`. */
  imageConfig: ContainerConfig;
  manifestDigest: string;
  configDigest: string;
  /** Virtual size of the disk and of the ext4 filesystem in it, in bytes. */
  virtualSize: number;
  fsType: "ext4";
}

export type LayerState = "cached" | "waiting" | "converting" | "done";

export type ChainProgress =
  | { type: "resolved"; reference: string; manifestDigest: string; layers: number }
  | {
      type: "layer";
      index: number;
      count: number;
      chainId: string;
      state: LayerState;
      /** Uncompressed tar bytes applied so far. */
      bytesDone?: number;
      bytesTotal?: number;
    }
  | { type: "overlay"; disk: string };
