export * from "./eipgate-pair";
