/* A shared object that is not a Sable plugin: it exports a function, but no sable_plugin_entry. */
__attribute__((visibility("default"))) int not_a_sable_plugin(void) { return 42; }
