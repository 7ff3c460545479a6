import { host } from "./host.js";
export const log = (level, message, fields) => host().log(level, message, fields);
