// `node --import <this file> --test`: lets a handler run under Node (see testing.js).
import { register } from "node:module";
register("./loader.js", import.meta.url);
