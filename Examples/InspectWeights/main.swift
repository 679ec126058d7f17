import MisalignCore
print("placeholder")
