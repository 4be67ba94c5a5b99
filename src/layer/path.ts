/**
 * Splits a tar entry name into clean path components: empty and `.`
 * components are dropped, and `..` removes the previous component but
 * never goes above the root. A leading `/` or `./` therefore makes no
 * difference, and no name can reach outside the image.
 */
export function entryComponents(name: string): string[] {
  const components: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") components.pop();
    else components.push(part);
  }
  return components;
}

/** Joins components into an absolute path; the root is `/`. */
export function joinPath(components: readonly string[]): string {
  return "/" + components.join("/");
}

/** Returns the parent of an absolute path; the parent of `/` is `/`. */
export function parentPath(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

/** Returns `child` below directory `dir`. */
export function childPath(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}
