/** The data hook of the read-only pages. */
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { api } from "./api.ts";

/** Loads `path` once, then every `refreshMs` if given; returns the latest data and error. */
export function useApi<T>(path: string, refreshMs = 0) {
  const data = useSignal<T | null>(null);
  const error = useSignal<string | null>(null);
  useEffect(() => {
    let live = true;
    const load = () =>
      api<T>("GET", path).then((value) => {
        if (live) [data.value, error.value] = [value, null];
      }).catch((err) => {
        if (live) error.value = (err as Error).message;
      });
    load();
    const timer = refreshMs ? setInterval(load, refreshMs) : undefined;
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [path]);
  return { data, error };
}
