# Build-time checks of which way dependencies go (CONVENTIONS.md: control -> admin protocol ->
# dataplane). Run at configure time, after every target exists.

# Fails the configure when `target` links, directly or through any library it links, a target
# defined under `forbidden_dir` (a path relative to the source root, e.g. "control").
function(eipgate_forbid_links_under target forbidden_dir)
  set(forbidden "${PROJECT_SOURCE_DIR}/${forbidden_dir}/")
  set(queue ${target})
  set(seen "")
  set(via_${target} "${target}")
  while(queue)
    list(POP_FRONT queue current)
    if(current IN_LIST seen OR NOT TARGET ${current})
      continue()
    endif()
    list(APPEND seen ${current})
    get_target_property(imported ${current} IMPORTED)
    get_target_property(dir ${current} SOURCE_DIR)
    string(FIND "${dir}/" "${forbidden}" at)
    if(NOT imported AND NOT current STREQUAL target AND at EQUAL 0)
      message(FATAL_ERROR "${target} must not link anything from ${forbidden_dir}/, but links "
                          "${current} (defined in ${dir}) via ${via_${current}}")
    endif()
    set(deps "")
    foreach(prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
      get_target_property(libs ${current} ${prop})
      if(libs)
        list(APPEND deps ${libs})
      endif()
    endforeach()
    foreach(dep IN LISTS deps)
      # Static libraries list their private deps as $<LINK_ONLY:x>; other generator expressions
      # name no target of ours.
      string(REGEX REPLACE "^\\$<LINK_ONLY:([^>]+)>$" "\\1" dep "${dep}")
      if(TARGET ${dep} AND NOT dep IN_LIST seen)
        if(NOT DEFINED via_${dep})
          set(via_${dep} "${via_${current}} -> ${dep}")
        endif()
        list(APPEND queue ${dep})
      endif()
    endforeach()
  endwhile()
endfunction()
